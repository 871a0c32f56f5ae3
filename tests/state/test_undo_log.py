"""The write log, undo statuses, mark history and run links the state keeps for `undo`."""

from __future__ import annotations

import json
from pathlib import Path

from etl.config import Settings
from etl.state import Ledger, Outcome, open_state
from tests.state.test_sqlite_state import old_db


def state(location: Path | str) -> Ledger:
    return open_state(Settings.from_env({}, state=str(location)))


def test_write_intents_are_durable_before_outcomes_and_outcomes_land_on_the_run(state_db: str) -> None:
    ledger = state(state_db)
    run = ledger.start_run(command="import", source="csv", target="t", client_id="c", mode="upsert", dry_run=False)
    ledger.record_writes("t", "c", run, [("a@x", "create", None, None, None),
                                         ("b@x", "update", "L2", json.dumps({"title": "A"}), json.dumps({"title": "B"}))])
    ledger.record_intents("t", "c", run, [("a@x", "pending_create", "h1", "{}"), ("b@x", "pending_update", "h2", None)])
    # another process sees the intents before any outcome (what a kill -9 leaves behind)
    other = state(state_db)
    assert {(w["key"], w["status"]) for w in other.run_writes(run)} == {("a@x", "pending"), ("b@x", "pending")}
    ledger.record_outcome("t", "c", Outcome("a@x", "created", "L1", "h1", written_at="2026-01-01T00:00:01.000Z"),
                          ours=True)
    ledger.record_outcome("t", "c", Outcome("b@x", "failed", error="HTTP 400"))
    ledger.flush()
    rows = {w["key"]: w for w in other.run_writes(run)}
    assert rows["a@x"]["status"] == "done" and rows["a@x"]["lead_id"] == "L1"
    assert rows["a@x"]["written_at"] == "2026-01-01T00:00:01.000Z" and rows["a@x"]["payload"] == "{}"
    assert rows["b@x"]["status"] == "failed" and json.loads(rows["b@x"]["before_image"]) == {"title": "A"}
    # a later run's outcome for the same key goes to that run's row, not to the first run's
    run2 = ledger.start_run(command="import", source="csv", target="t", client_id="c", mode="upsert", dry_run=False)
    ledger.record_writes("t", "c", run2, [("a@x", "update", "L1", "{}", "{}")])
    ledger.record_intents("t", "c", run2, [("a@x", "pending_update", "h3", None)])
    ledger.record_outcome("t", "c", Outcome("a@x", "updated", "L1", "h3", written_at="2026-01-01T00:00:09.000Z"))
    ledger.flush()
    assert {w["key"]: w["written_at"] for w in ledger.run_writes(run)}["a@x"] == "2026-01-01T00:00:01.000Z"
    assert ledger.run_writes(run2)[0]["written_at"] == "2026-01-01T00:00:09.000Z"
    assert {(w["run_id"], w["action"]) for w in ledger.client_writes("t", "c")} >= {(run, "create"), (run2, "update")}
    assert ledger.last_writing_run()["run_id"] == run2  # type: ignore[index]
    ledger.close()
    other.close()


def test_undo_statuses_runs_links_and_forgetting(state_db: str) -> None:
    ledger = state(state_db)
    run = ledger.start_run(command="import", source="csv", target="t", client_id="c", mode="insert", dry_run=False)
    ledger.record_writes("t", "c", run, [("a@x", "create", None, None, None)])
    ledger.record_intents("t", "c", run, [("a@x", "pending_create", "h1", "{}")])
    ledger.record_outcome("t", "c", Outcome("a@x", "created", "L1", "h1"), ours=True)
    undo = ledger.start_run(command="undo", source="csv", target="t", client_id="c", mode=None, dry_run=False,
                            undo_of=run)
    ledger.record_undo(undo, [(run, "t", "c", "a@x", "deleted", None)])
    ledger.forget_undone("t", "c", ["L1"], [])
    ledger.finish_run(undo, exit_code=0, counts={"deleted": 1})
    assert ledger.run_writes(run)[0]["undo_status"] == "deleted"
    assert ledger.rows("t", "c")[0]["status"] == "undone" and ledger.rows("t", "c")[0]["lead_id"] is None
    info = ledger.get_run(run)
    assert info is not None and info["undone_by"] == undo and info["undo_exit"] == 0
    assert ledger.get_run(undo)["undo_of"] == run  # type: ignore[index]
    assert ledger.last_writing_run()["run_id"] == run  # type: ignore[index]  # an undo is never --last
    ledger.close()


def test_marks_remember_where_a_run_moved_them(state_db: str) -> None:
    ledger = state(state_db)
    ledger.set_mark("job", "m", "2026-01-01")
    ledger.set_mark("job", "m", "2026-02-01", run_id="r1")
    ledger.set_mark("job", "m", "2026-03-01", run_id="r1")  # a second move keeps the first before-value
    ledger.set_mark("job", "n", "x", run_id="r1")
    assert ledger.marks_set_by("r1") == [
        {"job": "job", "name": "m", "before_value": "2026-01-01", "after_value": "2026-03-01"},
        {"job": "job", "name": "n", "before_value": None, "after_value": "x"},
    ]
    ledger.delete_mark("job", "n")
    assert ledger.get_mark("job", "n") is None and ledger.get_mark("job", "m") == "2026-03-01"
    ledger.close()


def test_a_state_db_from_before_undo_gains_the_write_log(tmp_path: Path) -> None:
    with state(old_db(tmp_path)) as ledger:
        (run,) = ledger.runs()
        assert run["undo_of"] is None and run["undone_by"] is None
        assert ledger.run_writes(run["run_id"]) == [] and ledger.last_writing_run() is None
        ledger.set_mark("hubspot:acme", "hubspot.lastmodifieddate", "2026-12-01T00:00:00Z", run_id="r9")
        assert ledger.marks_set_by("r9")[0]["before_value"] == "2026-11-01T00:00:00Z"
