import pytest

from etl.load.api import PaginationLoop, Paginator
from etl.reconcile import TargetSnapshot, diff, extra_copies


def snap(*leads: dict) -> TargetSnapshot:
    s = TargetSnapshot()
    s.add(leads)
    return s


def test_diff_confirmed_and_missing() -> None:
    s = snap({"id": "1", "email": "A@x.com"}, {"id": "2", "email": "b@x.com"})
    ack = {"a@x.com": {}, "c@x.com": {}}
    confirmed, missing = diff({"a@x.com", "b@x.com", "c@x.com", "d@x.com"}, ack, s)
    assert confirmed == {"a@x.com", "b@x.com"}
    assert missing == {"c@x.com"}  # d@ was never acknowledged: it failed, it is not "missing"


def test_extra_copies_only_our_own_late_doubles() -> None:
    s = snap(
        {"id": "mine", "email": "a@x.com", "createdAt": "2026-03-01T00:00:10Z"},
        {"id": "double", "email": "a@x.com", "createdAt": "2026-03-01T00:00:12Z"},
        {"id": "users-own", "email": "b@x.com", "createdAt": "2020-01-01T00:00:00Z"},
        {"id": "ours-b", "email": "b@x.com", "createdAt": "2026-03-01T00:00:10Z"},
    )
    intent = 1772323210.0  # 2026-03-01T00:00:10Z
    rows = {
        "a@x.com": {"ours": 1, "lead_id": "mine", "intent_at": intent},
        "b@x.com": {"ours": 1, "lead_id": "ours-b", "intent_at": intent},
    }
    assert [lead["id"] for lead in extra_copies(rows, s)] == ["double"]


def test_paginator_follows_tokens_and_refuses_loops() -> None:
    p = Paginator()
    assert p.advance("t1") and p.token == "t1"
    assert not p.advance(None)
    loop = Paginator()
    loop.advance("t1")
    with pytest.raises(PaginationLoop):
        loop.advance("t1")
