"""A crash inside polars/pandera/pyarrow is an internal error: exit 70, one line, and the runs row,
the ledger and the report keep what was done, so that running the command again is safe.

pyo3 raises a Rust panic as `PanicException`, which derives from BaseException (not Exception).
The crash is injected into a transform step of the real CLI process, on a later batch, so that
earlier batches are loaded when it happens.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli_helpers import cli_env
from tests.integration.helpers import email_counts, people, stored, write_csv

PANIC_REPORT = (
    b"thread 'polars-3' (4242) panicked at crates/polars-arrow/src/array/binview/mod.rs:412:9:\n"
    b"assertion failed: i < self.len()\n"
    b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
)
ROWS = 60
CRASH_AT_ROW = 45  # the transform of the batch holding this row raises


def crashing_cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI, with `strip_values` raising a real pyo3 PanicException on the batch with CRASH_AT_ROW."""
    wrapper = tmp_path / "crashing_cli.py"
    wrapper.write_text(textwrap.dedent(f"""
        import os
        import sys

        import polars as pl
        from polars.exceptions import PanicException

        import etl.transform as transform
        real = transform.strip_values
        PANIC_REPORT = {PANIC_REPORT!r}

        def strip_values(frame, *args, **kwargs):
            if frame.filter(pl.col("_row") == {CRASH_AT_ROW}).height:
                # What Rust's panic hook writes to fd 2 before pyo3 raises PanicException.
                os.write(2, PANIC_REPORT)
                raise PanicException("assertion failed: i < self.len()")
            return real(frame, *args, **kwargs)

        transform.strip_values = strip_values
        from etl.cli import main

        sys.argv = ["leadgenius-etl", *sys.argv[1:]]
        main()
    """))
    return subprocess.run([sys.executable, str(wrapper), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_native_panic_exits_70_and_keeps_report_runs_and_ledger(lg_sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", people(ROWS))
    env = cli_env(lg_sandbox.base_url, tmp_path, api_key=False)
    report_path = tmp_path / "report.json"
    args = ["import", "csv", str(src), "--client", "Acme Corp", "--batch-rows", "10", "--quiet",
            "--report", str(report_path)]

    proc = crashing_cli(tmp_path, *args, env=env)

    assert proc.returncode == 70, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("leadgenius-etl: error: internal error: PanicException: assertion failed")

    report = json.loads(report_path.read_text())
    assert report["exit_code"] == 70 and report["error"].startswith("PanicException: ")
    created = report["counts"]["created"]
    assert 0 < created < CRASH_AT_ROW, report["counts"]  # the batches before the crash were loaded
    assert report["requests"]["by_status"].get("201", 0) >= created
    assert len(stored(lg_sandbox, "acme-corp")) == created

    db = sqlite3.connect(tmp_path / "state.db")
    runs = db.execute("SELECT exit_code, ended_at, counts FROM runs").fetchall()
    assert len(runs) == 1 and runs[0][0] == 70 and runs[0][1] is not None
    assert json.loads(runs[0][2])["created"] == created
    statuses = dict(db.execute("SELECT status, count(*) FROM leads GROUP BY status").fetchall())
    assert statuses.get("created") == created, statuses  # every answered create is in the ledger
    db.close()

    # Running the same command again (no crash now) finishes the job without a double.
    rerun = subprocess.run([sys.executable, "-m", "etl", *args], env=env, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    counts = email_counts(stored(lg_sandbox, "acme-corp"))
    assert len(counts) == ROWS and set(counts.values()) == {1}
