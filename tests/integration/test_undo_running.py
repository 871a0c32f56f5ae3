"""`undo` of a run that is still running is refused; one killed with kill -9 stays undoable; an undo
leaves no lock file behind. The real CLI over HTTP against the sandbox, on both state backends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from etl.config import Settings
from etl.errors import JobLocked
from etl.state import open_state
from tests.conftest import state_for
from tests.integration.helpers import people, stored, write_csv
from tests.integration.test_cli import assert_clean_failure, cli, env_for
from tests.integration.test_undo import CLIENT, everything, run_import, seed_bystanders, undo, without_stamps


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.soak)])
def state_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both backends, but PostgreSQL's run (80 s) only under `make soak`: CI's 10 minutes are spent.
    The run lock itself is tested on both backends in tests/state/test_backends.py."""
    return state_for(request, tmp_path)


def _deletes(lg: Any) -> int:
    return sum(lg.stats()["requests"].get("DELETE /api/leads", {}).values())


def _wait_until_free(state: str, run_id: str) -> None:
    """PostgreSQL ends a killed client's session when it reads the closed socket: a moment after the kill."""
    deadline = time.monotonic() + 10
    with open_state(Settings.from_env({}, state=state)) as ledger:
        while True:
            try:
                with ledger.run_lock(run_id):
                    return
            except JobLocked:
                assert time.monotonic() < deadline, "the killed run's lock was never freed"
                time.sleep(0.05)


@pytest.mark.slow
def test_undo_of_a_running_import_is_refused_and_after_kill_9_it_is_done(
    lg_sandbox, tmp_path: Path, state_db: str
) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_ETL_STATE=state_db)
    seed_bystanders(lg_sandbox)
    before = everything(lg_sandbox)
    lg_sandbox.config(latency_ms=150)  # 400 creates, one at a time: the import runs for a minute; it is killed
    src = write_csv(tmp_path / "in.csv", people(400))
    proc = subprocess.Popen([sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp",
                             "--concurrency", "1", "-q"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(stored(lg_sandbox, CLIENT)) < 3 + 20:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        [running] = [r for r in map(json.loads, cli("runs", "--json", env=env).stdout.splitlines())
                     if r["command"] == "import"]
        assert running["ended_at"] is None and running["status"] == "running"
        assert "running" in cli("runs", env=env).stdout
        landed = len(stored(lg_sandbox, CLIENT))

        for args in ([running["run_id"]], ["--last"], [running["run_id"], "--dry-run"]):
            refused = cli("undo", *args, env=env)
            assert proc.poll() is None, "the import ended before the undo was tried: the test proves nothing"
            assert_clean_failure(refused, 4, f"run {running['run_id']} is still running (")
            assert "wait for it to end" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert _deletes(lg_sandbox) == 0 and len(stored(lg_sandbox, CLIENT)) >= landed  # nothing deleted
        assert [r["command"] for r in map(json.loads, cli("runs", "--json", env=env).stdout.splitlines())] \
            == ["import"]  # not even an undo run recorded

        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait(30)
    lg_sandbox.config(latency_ms=0)
    _wait_until_free(state_db, running["run_id"])
    [killed] = [r for r in map(json.loads, cli("runs", "--json", env=env).stdout.splitlines())]
    assert (killed["run_id"], killed["ended_at"], killed["status"]) == (running["run_id"], None, "stopped")
    done, report = undo(env, tmp_path, running["run_id"])  # no end in its row, but nobody holds it: undoable
    assert done.returncode == 0, done.stderr
    assert report["counts"]["deleted"] >= landed - 3
    assert without_stamps(everything(lg_sandbox)) == without_stamps(before)


def test_an_undo_leaves_no_lock_file_in_the_state_folder(lg_sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "state"
    env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_ETL_STATE=str(folder / "state.db"))
    first = run_import(env, tmp_path, people(5), "first")
    second = run_import(env, tmp_path, people(5, start=5), "second")
    before = sorted(p.name for p in folder.iterdir())
    for run_id in (second, first, first):  # the last one: already undone, nothing to do
        proc, _ = undo(env, tmp_path, run_id)
        assert proc.returncode == 0, proc.stderr
    after = sorted(p.name for p in folder.iterdir())
    assert [name for name in after if name.endswith(".lock")] == []
    assert set(after) <= set(before) | {"state.db-wal", "state.db-shm"}
