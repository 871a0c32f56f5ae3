"""The command line as a user meets it: exit codes, one clear line, no traceback, no secret anywhere."""

from __future__ import annotations

import json
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.state import open_state
from tests.cli_helpers import assert_no_secret, cli_env
from tests.integration.helpers import email_counts, people, settings_for, stored, write_csv

PASSWORD = "demo-password"


def env_for(base_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(base_url, tmp_path, api_key=False, **extra)


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert words in proc.stderr, proc.stderr


def test_input_mistakes_exit_2_with_one_line(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    assert_clean_failure(cli("import", "csv", str(tmp_path / "nope.csv"), "--client", "A", env=env), 2, "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    assert_clean_failure(cli("import", "csv", str(tmp_path / "empty.csv"), "--client", "A", env=env), 2, "empty")
    good = write_csv(tmp_path / "in.csv", people(3))
    assert_clean_failure(cli("import", "csv", str(good), "--client", "A", "--mode", "merge", env=env), 2, "--mode")
    bad_map = tmp_path / "m.toml"
    bad_map.write_text('[fields]\nphone = ["phone"]\n')
    proc = cli("import", "csv", str(good), "--client", "A", "--mapping", str(bad_map), env=env)
    assert_clean_failure(proc, 2, "phone")
    insecure = env_for("http://leadgenius.example.com", tmp_path)
    assert_clean_failure(cli("import", "csv", str(good), "--client", "A", env=insecure), 2, "http://")
    assert stored(lg_sandbox, "a") == []


def test_refused_credentials_and_unreachable_target_exit_3(lg_sandbox, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "in.csv", people(3))
    wrong = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_PASSWORD="not-the-password")
    proc = cli("import", "csv", str(good), "--client", "A", env=wrong)
    assert_clean_failure(proc, 3, "refused")
    assert "not-the-password" not in proc.stderr + proc.stdout
    from etl.sandbox.server import free_port

    down = env_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    assert_clean_failure(cli("import", "csv", str(good), "--client", "A", env=down), 3, "unreachable")


def test_successful_run_reports_and_leaks_no_secret(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_API_KEY=lg_sandbox.tenant.api_key,
                  LEADGENIUS_USER_ID=lg_sandbox.tenant.user_id, LEADGENIUS_ETL_LOG_LEVEL="DEBUG")
    rows = [*people(25), {"firstName": "x", "lastName": "y", "email": "broken"}]
    src = write_csv(tmp_path / "in.csv", rows)
    proc = cli("import", "csv", str(src), "--client", "Acme Corp", "--report", str(tmp_path / "r.json"),
               "--rejects", str(tmp_path / "rej.csv"), "--report-html", str(tmp_path / "r.html"), env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"]["confirmed"] == 25 and report["counts"]["rejected"] == 1
    assert report["requests"]["total"] > 25
    strict = cli("import", "csv", str(src), "--client", "Acme Corp", "--strict", env=env)
    assert strict.returncode == 1  # rejects + --strict
    assert stat.S_IMODE((tmp_path / "auth.json").stat().st_mode) == 0o600
    assert_no_secret(
        tmp_path, stdout=proc.stdout, stderr=proc.stderr, strict_stderr=strict.stderr,
        report=(tmp_path / "r.json").read_text(), rejects=(tmp_path / "rej.csv").read_text(),
        html=(tmp_path / "r.html").read_text(),
    )
    assert '"event"' in proc.stderr  # JSON log lines off a terminal


@pytest.mark.slow
def test_kill_minus_9_at_random_points_then_rerun_is_exact(lg_sandbox, tmp_path: Path, state_db: str) -> None:
    """Each attempt runs as another "machine" (its own working directory and auth file) sharing only the
    state: with PostgreSQL, a run killed on machine A is finished exactly on machine B."""
    lg_sandbox.config(latency_ms=15)
    rows = people(400)
    src = write_csv(tmp_path / "in.csv", rows)
    shared = state_db.startswith("postgresql://")
    rng = random.Random(20261122)
    killed_midway = 0

    def machine(n: int) -> tuple[Path, dict[str, str]]:
        home = tmp_path / f"machine-{n}" if shared else tmp_path
        home.mkdir(exist_ok=True)
        return home, env_for(lg_sandbox.base_url, home, LEADGENIUS_ETL_STATE=state_db)

    for attempt in range(3):
        cwd, env = machine(attempt)
        proc = subprocess.Popen([sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp",
                                 "--concurrency", "4", "-q"], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        goal = rng.randint(20, 360 - attempt * 40)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(stored(lg_sandbox, "acme-corp")) >= goal:
                break
            time.sleep(0.02)
        before = len(stored(lg_sandbox, "acme-corp"))
        proc.send_signal(signal.SIGKILL)
        killed_midway += proc.wait() == -signal.SIGKILL and before < 400
    assert killed_midway >= 2
    cwd, env = machine(3)
    final = subprocess.run([sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp",
                            "--report", str(tmp_path / "r.json")], env=env, cwd=cwd, capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    counts = email_counts(stored(lg_sandbox, "acme-corp"))
    assert len(counts) == 400 and set(counts.values()) == {1}
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"]["confirmed"] == 400 and report["counts"]["missing"] == 0
    if shared:  # the shared history holds the killed runs (never finished) and the final one
        with open_state(settings_for(lg_sandbox.base_url, tmp_path, state=state_db)) as state:
            newest, *earlier = state.runs()
        assert newest["exit_code"] == 0 and earlier and all(r["exit_code"] is None for r in earlier)


def test_unwritable_outputs_fail_before_any_request(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    src = write_csv(tmp_path / "in.csv", people(3))
    for flag, value in (("--report", "/proc/nope/r.json"), ("--rejects", str(tmp_path))):
        assert_clean_failure(cli("import", "csv", str(src), "--client", "A", flag, value, env=env), 2, "cannot write")
    assert lg_sandbox.stats()["total"] == 0


def test_credentials_lost_mid_run_exit_3_not_an_internal_error(lg_sandbox, tmp_path: Path) -> None:
    # The token expires once the run is under way: the sandbox clock jumps past its lifetime as soon as the
    # first lead is stored. (A 2 s wall-clock lifetime raced the CLI's start-up: on a loaded machine the token
    # expired before the first create and nothing was stored.)
    lg_sandbox.config(latency_ms=20)
    tokens = lg_sandbox.login()
    (tmp_path / "auth.json").write_text(json.dumps({
        "token": tokens["accessToken"], "refresh_token": "not-a-refresh-token", "email": "demo@leadgenius.local",
        "base_url": lg_sandbox.base_url,
    }))
    env = env_for(lg_sandbox.base_url, tmp_path)
    del env["LEADGENIUS_PASSWORD"]  # nothing to log in again with once the token expires
    src = write_csv(tmp_path / "in.csv", people(300))
    args = [sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp", "--concurrency", "2"]
    run = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not stored(lg_sandbox, "acme-corp"):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no lead stored in 120 s"
            time.sleep(0.02)
        lg_sandbox.admin("POST", "clock", {"advance": tokens["expiresIn"] + 60})
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert_clean_failure(subprocess.CompletedProcess(args, run.returncode, out, err), 3, "auth login")
    created = len(stored(lg_sandbox, "acme-corp"))
    assert 0 < created < 300  # it stopped mid-run


def test_reconcile_finds_and_repairs_leads_lost_after_an_earlier_run(lg_sandbox, tmp_path: Path) -> None:
    import httpx

    env = env_for(lg_sandbox.base_url, tmp_path)
    src = write_csv(tmp_path / "in.csv", people(30))
    assert cli("import", "csv", str(src), "--client", "Acme Corp", "-q", env=env).returncode == 0
    lost = stored(lg_sandbox, "acme-corp")[:4]
    r = httpx.request("DELETE", f"{lg_sandbox.base_url}/api/leads", json={"ids": [lead["id"] for lead in lost]},
                      headers=lg_sandbox.bearer())
    assert r.status_code == 200
    check = cli("reconcile", "--client", "acme-corp", "--report", str(tmp_path / "rec.json"), env=env)
    assert check.returncode == 1 and "4 missing" in check.stdout
    assert len(stored(lg_sandbox, "acme-corp")) == 26  # without --repair nothing is written
    repair = cli("reconcile", "--client", "Acme Corp", "--repair", env=env)
    assert repair.returncode == 0 and "4 repaired" in repair.stdout, repair.stdout + repair.stderr
    counts = email_counts(stored(lg_sandbox, "acme-corp"))
    assert len(counts) == 30 and set(counts.values()) == {1}
    assert {lead["email"] for lead in lost} <= set(counts)


def test_auth_refresh_and_status(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    assert cli("auth", "login", env=env).returncode == 0
    before = json.loads((tmp_path / "auth.json").read_text())["token"]
    time.sleep(1.1)  # a new token carries a later iat
    refreshed = cli("auth", "refresh", env=env)
    assert refreshed.returncode == 0, refreshed.stderr
    after = json.loads((tmp_path / "auth.json").read_text())
    assert after["token"] != before and after["refresh_token"]
    status = cli("auth", "status", env=env)
    assert status.returncode == 0 and "demo@leadgenius.local" in status.stdout and "0o600" in status.stdout
    assert after["token"] not in status.stdout + status.stderr
