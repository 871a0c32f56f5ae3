"""`leadgenius-etl import leadscraper` and `sync` with a leadscraper job, as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from etl.jobs import default_job_name
from etl.sandbox.leadscraper.app import READONLY_KEY
from etl.state import open_state
from tests.cli_helpers import cli_env
from tests.integration.helpers import email_counts, settings_for, stored
from tests.leadscraper.conftest import LSSandbox

SLUG = "scraped"


def env_for(lg: object, ls: LSSandbox, tmp_path: Path, **extra: str) -> dict[str, str]:
    base = getattr(lg, "base_url")  # noqa: B009 - a fixture handle
    return cli_env(base, tmp_path, api_key=False, LEADSCRAPER_API_KEY=ls.key, LEADSCRAPER_BASE_URL=ls.base_url,
                   **extra)


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "etl", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_import_dry_run_and_sync_from_the_command_line_never_show_the_key(lg_sandbox, ls_sandbox, tmp_path) -> None:
    ls_sandbox.seed(260, seed=11)
    env = env_for(lg_sandbox, ls_sandbox, tmp_path, LEADGENIUS_ETL_LOG_LEVEL="DEBUG")
    outputs: list[str] = []
    dry = cli("import", "leadscraper", "--client", "Scraped", "--status", "hot", "--dry-run", env=env)
    outputs += [dry.stdout, dry.stderr]
    assert dry.returncode == 0, dry.stderr
    assert "LeadScraper request(s)" in dry.stdout and "covered" in dry.stdout  # the read's cost, stated
    assert stored(lg_sandbox, SLUG) == []
    report, rejects, html = tmp_path / "r.json", tmp_path / "rej.csv", tmp_path / "r.html"
    real = cli("import", "leadscraper", "--client", "Scraped", "--status", "hot", "--report", str(report),
               "--rejects", str(rejects), "--report-html", str(html), env=env)
    outputs += [real.stdout, real.stderr, report.read_text(), rejects.read_text(), html.read_text()]
    assert real.returncode == 0, real.stderr
    hot = {str(lead["email"]).strip().lower() for lead in ls_sandbox.leads()
           if lead["lead_status"] == "hot" and lead["email"]}
    assert set(email_counts(stored(lg_sandbox, SLUG))) == hot
    data = json.loads(report.read_text())
    assert data["source_info"]["filters"] == {"status": "hot"}
    assert data["source_info"]["job"] == default_job_name("leadscraper", "Scraped") and data["source_info"]["mark_after"]

    job = tmp_path / "ls.toml"
    job.write_text(f'source = "leadscraper"\nclient = "Scraped"\nstatus = "hot"\nmode = "upsert"\n'
                   f'name = "{default_job_name("leadscraper", "Scraped")}"\nreport = "sync.json"\n')
    ls_sandbox.add({"email": "fresh@hot.io", "full_name": "Fresh Lead", "lead_score": 90, "lead_status": "hot"},
                   {"email": "cold@cold.io", "full_name": "Cold Lead", "lead_score": 5, "lead_status": "cold"})
    synced = cli("sync", str(job), env=env)
    outputs += [synced.stdout, synced.stderr, (tmp_path / "sync.json").read_text()]
    assert synced.returncode == 0, synced.stderr
    info = json.loads((tmp_path / "sync.json").read_text())
    assert info["counts"]["created"] == 1 and info["source_info"]["read"].startswith("changed since")
    assert "fresh@hot.io" in email_counts(stored(lg_sandbox, SLUG))

    wrong = env | {"LEADSCRAPER_API_KEY": "ls_live_wrong_key_5e2a9c71"}
    refused = cli("import", "leadscraper", "--client", "Scraped", env=wrong)
    outputs += [refused.stdout, refused.stderr]
    assert refused.returncode == 3 and "refused the API key" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    forbidden = cli("import", "leadscraper", "--client", "Scraped", env=env | {"LEADSCRAPER_API_KEY": READONLY_KEY})
    outputs += [forbidden.stdout, forbidden.stderr]
    assert forbidden.returncode == 3 and "403" in forbidden.stderr
    for text in outputs:
        for secret in (ls_sandbox.key, "ls_live_wrong_key_5e2a9c71", READONLY_KEY):
            assert secret not in text


def test_usage_mistakes_exit_2_with_one_line(lg_sandbox, ls_sandbox, tmp_path) -> None:
    env = env_for(lg_sandbox, ls_sandbox, tmp_path)
    for args, words in ((["--status", "lukewarm"], "--status"), (["--score-min", "150"], "score-min"),
                        (["--since", "yesterday"], "ISO 8601"), (["--lookback", "soon"], "not a duration")):
        proc = cli("import", "leadscraper", "--client", "Scraped", *args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr
    no_key = {k: v for k, v in env.items() if k != "LEADSCRAPER_API_KEY"}
    proc = cli("import", "leadscraper", "--client", "Scraped", env=no_key)
    assert proc.returncode == 2 and "LEADSCRAPER_API_KEY" in proc.stderr
    assert ls_sandbox.stats()["by_route"] == {}


def test_kill_minus_9_then_rerun_is_exact_and_the_mark_waits_for_it(lg_sandbox, ls_sandbox, tmp_path) -> None:
    lg_sandbox.config(latency_ms=15)
    ls_sandbox.seed(400, seed=12)
    env = env_for(lg_sandbox, ls_sandbox, tmp_path)
    args = [sys.executable, "-m", "etl", "import", "leadscraper", "--client", "Scraped", "--concurrency", "4", "-q"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(stored(lg_sandbox, SLUG)) < 120:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert 0 < len(stored(lg_sandbox, SLUG)) < 380  # killed mid-run
    with open_state(settings_for(lg_sandbox.base_url, tmp_path)) as state:  # the CLI's state (cli_env)
        assert state.get_mark(default_job_name("leadscraper", "Scraped"), "leadscraper.created_at") is None
    final = cli("import", "leadscraper", "--client", "Scraped", "--report", str(tmp_path / "r.json"), env=env)
    assert final.returncode == 0, final.stderr
    counts = email_counts(stored(lg_sandbox, SLUG))
    want = {str(lead["email"]).strip().lower() for lead in ls_sandbox.leads() if lead["email"]}
    assert set(counts) == want and set(counts.values()) == {1}  # nothing lost, nothing doubled
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"]["missing"] == 0 and report["source_info"]["mark_after"]


def test_the_summary_counts_the_sources_requests_apart_from_leadgenius(lg_sandbox, ls_sandbox, tmp_path) -> None:
    ls_sandbox.seed(250, seed=3)  # 3 list pages
    report = tmp_path / "r.json"
    run = cli("import", "leadscraper", "--client", "Scraped", "--report", str(report),
              env=env_for(lg_sandbox, ls_sandbox, tmp_path))
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    sent = ls_sandbox.stats()["by_route"]
    assert data["source_requests"]["api"] == "LeadScraper"
    assert data["source_requests"]["total"] == data["source_requests"]["list"] == sum(sent.values()) == 3
    assert data["requests"]["total"] > data["counts"]["created"] > 0  # the existing key: the target's requests
    rows = {line.strip("│ ").rsplit("│", 1)[0].strip(): line.rsplit("│", 2)[-2].strip()
            for line in run.stdout.splitlines() if "requests" in line and "│" in line}
    assert rows == {"LeadGenius requests": f"{data['requests']['total']:,}", "LeadScraper requests (source)": "3"}
