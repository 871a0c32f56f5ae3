"""The undo plan, pure: write-log rows + one read of the client -> what to delete, restore or leave."""

from __future__ import annotations

import json
from typing import Any

import pytest

from etl.load.deletes import DELETE_BATCH, batches
from etl.reconcile import TargetSnapshot
from etl.undo import (
    LedgerContext,
    UndoItem,
    UndoReport,
    ledger_context,
    plan_undo,
    window_end,
)

RUN = "run-a"
T0 = 1_800_000_000.0  # the run's intents


def iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lead(lead_id: str, email: str, created: float, updated: float | None = None, **fields: str) -> dict[str, Any]:
    return {"id": lead_id, "email": email, "createdAt": iso(created), "updatedAt": iso(updated or created), **fields}


def snap(*leads: dict[str, Any]) -> Any:
    s = TargetSnapshot()
    s.add(list(leads))
    return s.frame


def create(key: str, lead_id: str | None, *, status: str = "done", written: float | None = None,
           payload: dict[str, str] | None = None, intent: float = T0) -> dict[str, Any]:
    return {"run_id": RUN, "target": "t", "client_id": "acme", "key": key, "action": "create", "lead_id": lead_id,
            "before_image": None, "after_image": None, "intent_at": intent, "status": status,
            "written_at": iso(written) if written else None, "done_at": None,
            "payload": json.dumps(payload) if payload else None}


def update(key: str, lead_id: str, before: dict[str, Any], after: dict[str, str], *, status: str = "done",
           written: float | None = T0 + 1) -> dict[str, Any]:
    return {"run_id": RUN, "target": "t", "client_id": "acme", "key": key, "action": "update", "lead_id": lead_id,
            "before_image": json.dumps(before), "after_image": json.dumps(after), "intent_at": T0, "status": status,
            "written_at": iso(written) if written else None, "done_at": None, "payload": None}


def plan(writes: list[dict[str, Any]], frame: Any, ctx: LedgerContext | None = None, force: bool = False,
         end: float = T0 + 60) -> list[UndoItem]:
    return plan_undo(writes, frame, ctx or LedgerContext(), window_end=end, force=force)


def test_a_create_untouched_since_the_run_is_deleted() -> None:
    [item] = plan([create("a@x.com", "L1", written=T0 + 1)], snap(lead("L1", "a@x.com", T0 + 1)))
    assert item.action == "delete" and item.lead_ids == ("L1",) and not item.forced


def test_a_create_edited_afterwards_is_a_conflict_with_what_was_written_and_what_is_there() -> None:
    write = create("a@x.com", "L1", written=T0 + 1, payload={"email": "a@x.com", "title": "CEO"})
    frame = snap(lead("L1", "a@x.com", T0 + 1, T0 + 30, title="Founder", notes="called"))
    [item] = plan([write], frame)
    assert item.action == "conflict"
    assert item.wrote == {"title": "CEO", "notes": None}
    assert item.now == {"title": "Founder", "notes": "called"}
    [forced] = plan([write], frame, force=True)
    assert forced.action == "delete" and forced.forced


def test_an_in_doubt_create_is_found_by_email_after_its_intent_and_only_then() -> None:
    write = create("a@x.com", None, status="pending")
    frame = snap(
        lead("OLD", "a@x.com", T0 - 3600),  # a person's lead from before the run: never ours
        lead("NEW", "A@x.com", T0 + 2),  # landed after the intent: the run's
        lead("LATE", "a@x.com", T0 + 600),  # long after the run ended: someone else's
    )
    [item] = plan([write], frame)
    assert item.action == "delete" and item.lead_ids == ("NEW",)


def test_an_in_doubt_create_never_takes_a_lead_another_run_created() -> None:
    write = create("a@x.com", None, status="pending")
    frame = snap(lead("B1", "a@x.com", T0 + 5))
    [item] = plan([write], frame, ledger_context(
        [{"run_id": "run-b", "action": "create", "lead_id": "B1", "written_at": None, "undo_written_at": None}], RUN))
    assert item.action == "not_written"
    # ... but a later run's update of it does not make it theirs: it is ours, changed since -> conflict
    updated = snap(lead("B1", "a@x.com", T0 + 5, T0 + 50))
    ctx = ledger_context([{"run_id": "run-b", "action": "update", "lead_id": "B1", "written_at": iso(T0 + 50),
                           "undo_written_at": None}], RUN)
    [item] = plan([write], updated, ctx)
    assert item.action == "conflict" and item.changed_by_run == "run-b"


def test_a_create_with_a_lost_answer_double_deletes_both_copies() -> None:
    write = create("a@x.com", "L1", written=T0 + 1)
    [item] = plan([write], snap(lead("L1", "a@x.com", T0 + 1), lead("L2", "a@x.com", T0 + 3)))
    assert item.action == "delete" and set(item.lead_ids) == {"L1", "L2"}


def test_gone_and_never_written() -> None:
    items = plan([create("a@x.com", "L1", written=T0 + 1), create("b@x.com", None, status="failed"),
                  update("c@x.com", "L3", {"title": "A"}, {"title": "B"})], snap())
    assert [i.action for i in items] == ["already_gone", "not_written", "already_gone"]


def test_an_update_untouched_since_puts_back_exactly_the_fields_it_changed() -> None:
    write = update("a@x.com", "L1", {"title": "CEO", "companyName": "Acme"}, {"title": "Chief", "companyName": "Acme 2"})
    [item] = plan([write], snap(lead("L1", "a@x.com", T0 - 99, T0 + 1, title="Chief", companyName="Acme 2",
                                     notes="untouched")))
    assert item.action == "restore" and item.restore == {"title": "CEO", "companyName": "Acme"} and not item.clear


def test_a_field_that_was_empty_before_cannot_be_emptied_again() -> None:
    write = update("a@x.com", "L1", {"title": None, "companyName": "Acme"}, {"title": "CEO", "companyName": "B"})
    [item] = plan([write], snap(lead("L1", "a@x.com", T0 - 99, T0 + 1, title="CEO", companyName="B")))
    assert item.action == "restore" and item.restore == {"companyName": "Acme"} and item.clear == ("title",)
    only = update("a@x.com", "L1", {"title": None}, {"title": "CEO"})
    [item] = plan([only], snap(lead("L1", "a@x.com", T0 - 99, T0 + 1, title="CEO")))
    assert item.action == "unclearable" and item.now == {"title": "CEO"}


def test_an_update_edited_afterwards_is_a_conflict_and_force_restores_only_the_run_fields() -> None:
    write = update("a@x.com", "L1", {"title": "CEO"}, {"title": "Chief"})
    frame = snap(lead("L1", "a@x.com", T0 - 99, T0 + 40, title="Chief", notes="a person wrote this"))
    [item] = plan([write], frame)
    assert item.action == "conflict" and item.wrote == {"title": "Chief"} and item.now == {"title": "Chief"}
    [forced] = plan([write], frame, force=True)
    assert forced.action == "restore" and forced.restore == {"title": "CEO"} and forced.forced


def test_our_own_undo_stamp_is_not_a_conflict() -> None:
    write = update("a@x.com", "L1", {"title": "CEO"}, {"title": "Chief"})
    frame = snap(lead("L1", "a@x.com", T0 - 99, T0 + 40, title="Chief"))
    ctx = ledger_context([{"run_id": "run-b", "action": "update", "lead_id": "L1", "written_at": iso(T0 + 20),
                           "undo_written_at": iso(T0 + 40)}], RUN)
    [item] = plan([write], frame, ctx)
    assert item.action == "restore"


def test_already_reverted_updates_need_nothing() -> None:
    write = update("a@x.com", "L1", {"title": "CEO"}, {"title": "Chief"})
    [item] = plan([write], snap(lead("L1", "a@x.com", T0 - 99, T0 + 40, title="CEO")))
    assert item.action == "reverted"


def test_an_update_whose_answer_was_lost_is_judged_by_its_fields() -> None:
    write = update("a@x.com", "L1", {"title": "CEO"}, {"title": "Chief"}, status="pending", written=None)
    [landed] = plan([write], snap(lead("L1", "a@x.com", T0 - 99, T0 + 5, title="Chief")))
    assert landed.action == "restore"
    [other] = plan([write], snap(lead("L1", "a@x.com", T0 - 99, T0 + 5, title="Someone else's")))
    assert other.action == "conflict"
    [never] = plan([write], snap(lead("L1", "a@x.com", T0 - 99, T0 - 99, title="CEO")))
    assert never.action == "not_written"


def test_window_end_covers_the_last_activity_plus_a_request_timeout() -> None:
    writes = [create("a", None, intent=T0), {**create("b", "x", intent=T0 + 5), "done_at": T0 + 9}]
    assert window_end(writes, {"ended_at": None}, 10.0) > T0 + 19
    assert window_end(writes, {"ended_at": T0 + 100}, 10.0) > T0 + 110
    assert window_end(writes, {"ended_at": None}, 10.0) < T0 + 60


def test_batches_of_fifty() -> None:
    ids = [f"L{i}" for i in range(121)]
    chunks = list(batches(ids))
    assert [len(c) for c in chunks] == [DELETE_BATCH, DELETE_BATCH, 21]
    assert [i for chunk in chunks for i in chunk] == ids


@pytest.mark.parametrize(("actions", "dry", "code"), [
    (["delete", "restore"], False, 0),
    (["conflict"], False, 1),
    (["unclearable"], False, 1),
    (["conflict"], True, 0),
])
def test_exit_code(actions: list[str], dry: bool, code: int) -> None:
    report = UndoReport(dry_run=dry, run_id=RUN)
    report.tally([UndoItem(RUN, "t", "c", f"k{i}", "create", a) for i, a in enumerate(actions)])  # type: ignore[arg-type]
    assert report.decide_exit_code() == code


def test_tally_by_outcome() -> None:
    items = [UndoItem(RUN, "t", "c", "a", "create", "delete", ("L1",)),
             UndoItem(RUN, "t", "c", "b", "update", "restore", ("L2",), restore={"title": "x"}),
             UndoItem(RUN, "t", "c", "c", "update", "restore", ("L3",), restore={"title": "x"})]
    report = UndoReport(dry_run=False, run_id=RUN)
    report.tally(items, {id(items[0]): "failed", id(items[1]): "restored", id(items[2]): "already_gone"})
    c = report.counts
    assert (c.deleted, c.failed, c.restored, c.already_gone) == (0, 1, 1, 1)
    assert report.failures[0]["lead_id"] == "L1" and report.decide_exit_code() == 1


def test_a_lead_the_run_deleted_is_named_as_not_restorable_and_one_still_there_was_never_deleted() -> None:
    """A HubSpot sync with on_archive = "delete" logs its deletes: the API has no undelete."""
    gone = {**create("gone@x.io", "L1"), "action": "delete"}
    kept = {**create("kept@x.io", "L2"), "action": "delete", "status": "pending"}  # its delete never landed
    items = plan([gone, kept], snap(lead("L2", "kept@x.io", T0 - 100)))
    assert [(it.action, it.lead_id) for it in items] == [("cannot_restore", "L1"), ("not_written", "L2")]
    report = UndoReport(dry_run=False, run_id=RUN)
    report.tally(items)
    assert report.counts.cannot_restore == 1 and report.decide_exit_code() == 1
    assert report.cannot_restore == [{"lead_id": "L1", "email": "gone@x.io", "reason": items[0].reason}]
