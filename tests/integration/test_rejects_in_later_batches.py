"""Rejects that sit in later batches of a multi-batch file, through the CLI (issue 10, item 2).

polars 2.1.0 was reported to panic (`assertion failed: i < self.len()`) in `explain_rejects` on
the second 100,000-row batch of a file whose invalid e-mails were spread through it. A small
--batch-rows gives the same shape (many batches, the first one clean) without a big file.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.cli_helpers import cli_env

ROWS = 1_200


def write_file(path: Path) -> dict[int, str]:
    """The seeds' layout; rows after 600 carry every kind of reject. Returns {row: rule}."""
    rules: dict[int, str] = {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["firstName", "lastName", "email", "companyName", "title", "notes"])
        for i in range(1, ROWS + 1):
            email = f"person{i}@example{i % 7}.com"
            notes = 'met at "SaaStr", wants SSO' if i % 5 == 0 else ""
            if i > 600 and i % 37 == 0:
                email, rules[i] = f"broken.{i}@@example.com", "invalid_email"
            elif i > 600 and i % 41 == 0:
                email, rules[i] = "", "missing_email"
            w.writerow([f"First{i}", "." if i % 3 == 0 else f"Last{i}", email, f"Co {i % 11}", "CEO", notes])
    return rules


def test_multi_batch_dry_run_with_rejects_only_in_later_batches(lg_sandbox, tmp_path: Path) -> None:
    src = tmp_path / "leads.csv"
    rules = write_file(src)
    report_path, rejects_path = tmp_path / "report.json", tmp_path / "rejects.csv"
    env = cli_env(lg_sandbox.base_url, tmp_path, api_key=False)
    proc = subprocess.run(
        [sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp", "--dry-run", "--quiet",
         "--batch-rows", "50", "--report", str(report_path), "--rejects", str(rejects_path)],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    report = json.loads(report_path.read_text())
    counts = report["counts"]
    assert counts["extracted"] == ROWS and counts["rejected"] == len(rules)
    assert counts["valid"] == ROWS - len(rules) and counts["created"] == ROWS - len(rules)
    assert report["rejects_by_rule"] == {
        "invalid_email": sum(r == "invalid_email" for r in rules.values()),
        "missing_email": sum(r == "missing_email" for r in rules.values()),
    }
    with rejects_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {int(r["_row"]): r["_rule"] for r in rows} == rules  # the right rows, numbered across batches
    for r in rows:
        if r["_rule"] == "invalid_email":
            assert r["_reason"] == f'not a valid e-mail address: "{r["email"]}"' and r["email"].startswith("broken.")
        else:
            assert r["_reason"].startswith("no e-mail address") and r["email"] == ""
