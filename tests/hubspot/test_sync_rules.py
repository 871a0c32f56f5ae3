"""The HubSpot sync rules, pure: when a run is full, what is new among archived and merged-away
contacts, which leads are theirs, and which of those the job may delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etl.extract.hubspot import ArchivedContact, Merge, iso_to_ms
from etl.hubspot_sync import Gone, GoneMemory, full_reason, split_deletable

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_full_reason() -> None:
    week = timedelta(days=7)
    assert full_reason(forced=True, has_mark=True, last_full=NOW, every=None, now=NOW) == "--full"
    assert full_reason(forced=False, has_mark=False, last_full=None, every=None, now=NOW) == "first run"
    assert full_reason(forced=False, has_mark=True, last_full=None, every=None, now=NOW) is None
    assert full_reason(forced=False, has_mark=True, last_full=NOW - timedelta(days=6), every=week, now=NOW) is None
    due = full_reason(forced=False, has_mark=True, last_full=NOW - week, every=week, now=NOW)
    assert due is not None and due.startswith("full_every 7 days")
    assert full_reason(forced=False, has_mark=True, last_full=None, every=week, now=NOW) is not None


def test_memory_selects_only_what_was_not_handled_and_survives_a_round_trip() -> None:
    a1 = ArchivedContact("11", "A@x.io ", "2026-12-01T11:55:00.000Z")
    a2 = ArchivedContact("12", None, "2026-12-01T11:58:00.000Z")
    m = Merge("20", ("21", "22"), ("b@x.io", "c@x.io"))
    memory = GoneMemory.load(None)
    gone = memory.select([a1, a2], [m, Merge("30", ("21",), ())])  # 21 listed twice: once
    assert gone.info() == {
        "archived": 2, "archived_ids": ["11", "12"], "merged_away": 2, "merged_away_ids": ["21", "22"],
        "merge_survivors": ["20"],
    }
    horizon = iso_to_ms("2026-12-01T11:56:00.000Z")
    after = GoneMemory.load(memory.remember(gone, horizon_ms=horizon).dump())
    assert after.merged == {"21", "22"} and set(after.archived) == {"11", "12"}
    # the next run re-reads the overlap and the survivor again: nothing is new
    assert after.select([a1, a2], [m]).info()["archived"] == after.select([a1, a2], [m]).info()["merged_away"] == 0
    # archives older than the next read's start are forgotten (they cannot come back)
    later = after.remember(Gone(), horizon_ms=iso_to_ms("2026-12-01T11:57:00.000Z"))
    assert set(later.archived) == {"12"}
    assert GoneMemory.load("not json").merged == set()


def test_lead_keys_never_name_a_live_contacts_email() -> None:
    gone = Gone(
        (ArchivedContact("11", " Shared@X.io", None), ArchivedContact("12", "solo@x.io", None)),
        (("21", Merge("20", ("21",), ("merged@x.io",))),),
    )
    keys = gone.lead_keys(live_keys={"shared@x.io"})
    assert keys == {"solo@x.io": "archived contact 12", "merged@x.io": "contact 21 merged into 20"}


def test_only_leads_this_job_created_are_deletable() -> None:
    delete, kept = split_deletable({"a@x.io": "archived", "b@x.io": "archived"}, {"a@x.io": "lead-1", "z@x.io": "lead-9"})
    assert delete == {"a@x.io": "lead-1"} and kept == ["b@x.io"]
