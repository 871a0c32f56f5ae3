"""Both state backends behave alike: the same calls, the same rows (SQLite file and real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.config import Settings
from etl.errors import JobLocked
from etl.state import Outcome, open_state


def settings_at(location: str) -> Settings:
    return Settings.from_env({}, state=location)


def test_outcomes_are_buffered_then_flushed_and_adopt_settles_pending_creates(state_db: str) -> None:
    settings = settings_at(state_db)
    with open_state(settings) as state:
        state.record_intents("t", "c", "r1", [("a", "pending_create", "ha", '{"email": "a"}'),
                                              ("b", "pending_create", "hb", '{"email": "b"}'),
                                              ("u", "pending_update", "hu", None)])
        state.record_outcome("t", "c", Outcome("a", "created", "L-a", "ha"), ours=True)
        with open_state(settings) as other:  # not flushed yet: another reader sees the intent
            assert {r["key"]: r["status"] for r in other.rows("t", "c")}["a"] == "pending_create"
        state.flush()
        state.adopt("t", "c", [("b", "L-b", "hb"), ("u", "L-u", None)], "r2")
        rows = {r["key"]: r for r in state.rows("t", "c")}
        index = state.index("t", "c").sort("_key")
    assert (rows["a"]["status"], rows["a"]["lead_id"], rows["a"]["ours"], rows["a"]["attempts"]) == (
        "created", "L-a", 1, 1)
    # a pending create found in the target was ours (its answer was lost); a pending update was not
    assert (rows["b"]["status"], rows["b"]["ours"], rows["b"]["payload"]) == ("created", 1, '{"email": "b"}')
    assert (rows["u"]["status"], rows["u"]["ours"], rows["u"]["content_hash"]) == ("updated", 0, "hu")
    assert index.rows() == [("a", "created", "L-a", "ha"), ("b", "created", "L-b", "hb"), ("u", "updated", "L-u", "hu")]


def test_a_failed_outcome_keeps_the_lead_id_and_counts_attempts(state_db: str) -> None:
    with open_state(settings_at(state_db)) as state:
        state.record_intents("t", "c", "r1", [("a", "pending_update", "h2", None)])
        state.adopt("t", "c", [("a", "L-a", "h1")], "r1")
        state.record_outcome("t", "c", Outcome("a", "failed", error="refused"))
        state.record_intents("t", "c", "r2", [("a", "pending_update", "h2", None)])
        state.record_outcome("t", "c", Outcome("a", "updated", "L-a", "h2"))
        state.flush()
        (row,) = state.rows("t", "c", ["a"])
    assert (row["status"], row["lead_id"], row["content_hash"], row["attempts"], row["run_id"]) == (
        "updated", "L-a", "h2", 2, "r2")


def test_runs_and_marks_round_trip(state_db: str) -> None:
    with open_state(settings_at(state_db)) as state:
        first = state.start_run(command="import", source="csv", target=None, client_id=None, mode="insert",
                                dry_run=True, job="nightly")
        second = state.start_run(command="sync", source="hubspot", target="t", client_id="c", mode="upsert",
                                 dry_run=False)
        state.finish_run(first, exit_code=1, counts={"created": 3, "failed": 1}, client_id="acme")
        assert state.get_mark("nightly", "m") is None
        state.set_mark("nightly", "m", "2026-11-01T00:00:00Z")
        state.set_mark("nightly", "m", "2026-11-02T00:00:00Z")
    with open_state(settings_at(state_db)) as state:
        runs = {r["run_id"]: r for r in state.runs()}
        assert state.get_mark("nightly", "m") == "2026-11-02T00:00:00Z"
        assert [r["run_id"] for r in state.runs(limit=1)] == [second]  # newest first
    assert (runs[first]["exit_code"], runs[first]["counts"], runs[first]["client_id"], runs[first]["dry_run"]) == (
        1, {"created": 3, "failed": 1}, "acme", 1)
    assert runs[second]["ended_at"] is None and runs[second]["counts"] is None


def test_a_second_holder_of_a_job_lock_is_refused_at_once(state_db: str) -> None:
    settings = settings_at(state_db)
    with open_state(settings) as a, open_state(settings) as b, a.job_lock("nightly"):
        with pytest.raises(JobLocked, match="already running"), b.job_lock("nightly"):
            pass
        with b.job_lock("other-job"):
            pass
    with open_state(settings) as c, c.job_lock("nightly"):
        pass


def test_a_killed_holder_releases_its_lock(state_db: str, tmp_path: Path) -> None:
    """kill -9 of the process holding a job lock frees it (fcntl: the file; PostgreSQL: the session)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from etl.config import Settings; from etl.state import open_state\n"
         "s = open_state(Settings.from_env({}, state=sys.argv[1]))\n"
         "with s.job_lock('nightly'):\n    print('locked', flush=True); time.sleep(120)\n",
         state_db],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with open_state(settings_at(state_db)) as state:
            with pytest.raises(JobLocked) as refused, state.job_lock("nightly"):
                pass
            assert f"pid {holder.pid}" in str(refused.value)
            holder.kill()
            holder.wait(10)
            # The server ends the dead client's session as soon as it reads the closed socket.
            deadline = time.monotonic() + 10
            while True:
                try:
                    with state.job_lock("nightly"):
                        break
                except JobLocked:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait(10)


def test_a_key_twice_in_one_batch_ends_as_if_written_one_by_one(state_db: str) -> None:
    """SQLite applies a batch row by row; PostgreSQL merges it into one statement: the same end state."""
    with open_state(settings_at(state_db)) as state:
        state.record_intents("t", "c", "r1", [("a", "pending_create", "h1", '{"v": 1}'),
                                              ("a", "pending_create", "h2", '{"v": 2}')])
        state.record_outcome("t", "c", Outcome("a", "failed", error="timeout"))
        state.record_outcome("t", "c", Outcome("a", "created", "L-a", "h2"), ours=True)
        state.record_outcome("t", "c", Outcome("a", "created", None, None))
        state.flush()
        state.adopt("t", "c", [("b", "L-b1", "x"), ("b", "L-b2", None)], "r1")
        rows = {r["key"]: r for r in state.rows("t", "c")}
    a, b = rows["a"], rows["b"]
    assert (a["status"], a["lead_id"], a["content_hash"], a["ours"], a["attempts"], a["error"], a["payload"]) == (
        "created", "L-a", "h2", 1, 3, None, '{"v": 2}')
    assert (b["status"], b["lead_id"], b["content_hash"]) == ("exists", "L-b2", "x")


def test_a_lock_session_lost_mid_run_is_reported(pg_url: str) -> None:
    import psycopg
    from structlog.testing import capture_logs

    from etl.state.postgres import lock_ids, lock_key

    with open_state(settings_at(pg_url)) as state, capture_logs() as logs:
        # the lock's session ends mid-run, as in a server restart or a killed backend
        with state.job_lock("nightly"), psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                          " AND granted AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                          lock_ids(lock_key("nightly")))
        with state.job_lock("nightly"):  # a clean run says nothing
            pass
    assert [entry["event"] for entry in logs] == [
        "the job lock was lost during the run; another run of the job may have overlapped it"]


def test_a_run_holds_its_run_lock_from_start_to_finish(state_db: str, tmp_path: Path) -> None:
    """`undo` tells a running run from a killed one by this lock: held while the runs row has no end."""
    settings = settings_at(state_db)
    with open_state(settings) as runner, open_state(settings) as other:
        run_id = runner.start_run(command="import", source="csv", target="t", client_id="c", mode="insert",
                                  dry_run=False)
        with pytest.raises(JobLocked) as refused, other.run_lock(run_id):
            pass
        assert "pid" in refused.value.holder or "leadgenius-etl" in refused.value.holder
        runner.finish_run(run_id, exit_code=0, counts={})
        with other.run_lock(run_id):  # free once the run has ended
            pass
        unfinished = runner.start_run(command="import", source="csv", target="t", client_id="c", mode="insert",
                                      dry_run=False)
    with open_state(settings) as later, later.run_lock(unfinished):  # closing the state frees it too
        assert later.get_run(unfinished)["ended_at"] is None  # type: ignore[index]
    assert list(tmp_path.glob("*.lock")) == []  # SQLite: no lock file outlives its holder


def test_a_lock_file_left_by_a_killed_process_is_taken_over_and_removed(tmp_path: Path) -> None:
    stale = tmp_path / "nightly.lock"
    stale.write_text("999999")  # a kill -9 leaves the file, unlocked
    with open_state(settings_at(str(tmp_path / "state.db"))) as state, state.job_lock("nightly"):
        assert stale.read_text() == str(os.getpid())
    assert not stale.exists()
