"""Access tokens that expire while a request waits (issue 10, item 4).

Real tokens live an hour; a long run, a long Retry-After or a slow back-off gets there. Here the
sandbox's tokens live 1-2 s: no longer than a 429's Retry-After (1 s, during which the client
holds every send) and shorter than the later back-offs (up to 30 s) and the 1.5-s slow answers
(the token expires while the server works), under the fault mix of issue 10 plus slow answers.
The credentials are fine all along: the run must renew as often as it needs to, end exact, and
never exit 3. Before the fix this exited 3 within ~20 s. The 429 holds make it ~90 s: `slow`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import cli_env
from tests.integration.helpers import email_counts, people, stored, write_csv

LEADS = 1_000


@pytest.mark.slow
def test_fault_storm_with_tokens_shorter_than_the_waits_ends_exact_never_exit_3(lg_sandbox, tmp_path: Path) -> None:
    lg_sandbox.config(token_ttl_s=1, drop_probability=0.02, seed=11)  # 2% of creates silently not stored
    for kind, p, seed in (("429", 0.05, 1), ("503", 0.05, 2), ("500", 0.03, 3), ("drop", 0.02, 4)):
        lg_sandbox.fault(kind, probability=p, seed=seed, retry_after=1)
    lg_sandbox.fault("slow", probability=0.02, seed=5, slow_ms=1500)
    src = write_csv(tmp_path / "in.csv", people(LEADS))
    report_path = tmp_path / "report.json"
    env = cli_env(lg_sandbox.base_url, tmp_path, api_key=False, LEADGENIUS_TIMEOUT_S="5")
    proc = subprocess.run(
        [sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp", "--quiet",
         "--report", str(report_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-2000:])
    report = json.loads(report_path.read_text())
    c = report["counts"]
    counts = email_counts(stored(lg_sandbox, "acme-corp"))
    assert set(counts.values()) == {1}  # never a double
    assert len(counts) == c["confirmed"] and c["missing"] == 0
    assert c["confirmed"] + c["failed"] == LEADS  # every lead accounted for
    assert proc.returncode == (0 if c["confirmed"] == LEADS else 1)
    # The storm happened, tokens expired mid-run, and the run renewed them as often as needed.
    injected = lg_sandbox.stats()["injected"]
    assert injected.get("429", 0) > 20 and injected.get("drop", 0) > 5, injected
    requests = report["requests"]
    assert requests["token_refreshes"] > 10 and requests["resent_after_401"] > 0, requests
    assert requests["by_status"].get("401", 0) == requests["resent_after_401"]  # every 401 was renewed and resent
