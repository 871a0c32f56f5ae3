"""The extractor's pure decisions, without a network: which association is primary, when a page is
the last, what to batch-read now, and the search cursor that reads past the 10,000 cap."""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.extract.hubspot import (
    FRAME_SCHEMA,
    NOT_IN_MAX,
    ArchivedContact,
    EmailOwner,
    SearchCursor,
    SearchPacer,
    _Row,
    archived_after,
    build_frame,
    http_date,
    next_after,
    primaries_of_companies,
    primary_from_v3,
    primary_from_v4,
    read_throttle,
    split_email_collisions,
    split_list,
    take_chunks,
)


def test_primary_from_v3_takes_the_labelled_one_not_the_first() -> None:
    assoc = [
        ("456", "contact_to_company_unlabeled"),
        ("123", "contact_to_company_unlabeled"),
        ("123", "contact_to_company"),
    ]
    assert primary_from_v3(assoc) == "123"
    assert primary_from_v3([("456", "contact_to_company_unlabeled")]) is None  # never guess
    assert primary_from_v3([]) is None


def test_primary_from_v4_takes_type_id_1() -> None:
    assert primary_from_v4([("9", [279]), ("7", [279, 1])]) == "7"
    assert primary_from_v4([("9", [279])]) is None


def test_next_after_reads_paging_or_none() -> None:
    assert next_after(None) is None
    assert next_after({}) is None
    assert next_after({"next": {"after": "200", "link": "http://x/crm/v3/objects/contacts?after=200"}}) == "200"


def test_take_chunks_keeps_partial_until_forced() -> None:
    pending = [str(i) for i in range(250)]
    chunks, keep = take_chunks(pending, 100, force=False)
    assert [len(c) for c in chunks] == [100, 100] and keep == pending[200:]
    chunks, keep = take_chunks(pending, 100, force=True)
    assert [len(c) for c in chunks] == [100, 100, 50] and keep == []
    assert take_chunks([], 100, force=True) == ([], [])


def test_build_frame_company_from_primary_only() -> None:
    rows = [
        _Row({"hs_object_id": "1", "lastmodifieddate": "2024-01-01T00:00:00.000Z"}, "10"),
        _Row({"hs_object_id": "2"}, "11"),
        _Row({"hs_object_id": "3"}, None),
    ]
    frame = build_frame(rows, {"10": ("Acme", "acme.com"), "11": None}, first_row=5)
    assert frame.schema == pl.Schema(FRAME_SCHEMA)
    assert frame["_row"].to_list() == [5, 6, 7]
    assert frame["company_status"].to_list() == ["ok", "deleted", "none"]
    assert frame["company_name"].to_list() == ["Acme", None, None]
    assert frame["company_id"].to_list() == ["10", "11", None]


def test_search_body_first_next_and_ties_mode() -> None:
    first = SearchCursor(since_ms=1000).body(200, ["email"])
    assert first["filterGroups"] == [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1000"}]}
    ]
    assert first["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert "after" not in first  # never offset paging
    nxt = SearchCursor(since_ms=1000, seen_ms=1500, seen_ids=frozenset({7, 3})).body(200, [])
    assert nxt["filterGroups"] == [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "1500"}]},
        {
            "filters": [
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": "1500"},
                {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": ["3", "7"]},
            ]
        },
    ]
    ties = SearchCursor(since_ms=1000, seen_ms=1500, tie_after_id=42).body(200, [])
    assert ties["filterGroups"][0]["filters"] == [
        {"propertyName": "lastmodifieddate", "operator": "EQ", "value": "1500"},
        {"propertyName": "hs_object_id", "operator": "GT", "value": "42"},
    ]
    assert ties["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]


def test_cursor_remembers_ids_at_the_last_timestamp_only() -> None:
    c = SearchCursor(since_ms=0)
    assert c.advance([(1, 10), (2, 10)], has_more=False) is None
    nxt = c.advance([(1, 9), (2, 10), (3, 10)], has_more=True)
    assert nxt == SearchCursor(since_ms=0, seen_ms=10, seen_ids=frozenset({2, 3}))
    assert not nxt.is_fresh(2, 10) and nxt.is_fresh(2, 11) and nxt.is_fresh(4, 10)
    # same timestamp again: the set grows; past what NOT_IN filters can exclude, keyset on hs_object_id
    assert nxt.advance([(4, 10)], has_more=True) == replace(nxt, seen_ids=frozenset({2, 3, 4}))
    grown = nxt.advance([(4, 10)], has_more=True, seen_max=2)
    assert grown is not None and grown.in_ties and grown.tie_after_id == 0 and grown.seen_ids == {2, 3, 4}
    assert grown.advance([(2, 10), (5, 10)], has_more=True) == replace(grown, tie_after_id=5)
    # the tie group drained: on from `> 10`
    assert grown.advance([(6, 10)], has_more=False) == SearchCursor(since_ms=10, inclusive=False)


# --- a model of HubSpot search, to prove "every change exactly once" past the cap --------------------


class FakeSearch:
    """HubSpot search semantics in memory: filters, ONE sort honoured, ties in a new random order on
    every request, offset paging, a 400 past the cap."""

    def __init__(self, contacts: Mapping[int, int], cap: int, rng: random.Random) -> None:
        self.contacts = contacts
        self.by_ms = sorted((ms, cid) for cid, ms in contacts.items())
        self.cap = cap
        self.rng = rng
        self.calls = 0

    def __call__(self, body: Mapping[str, Any]) -> tuple[list[tuple[int, int]], bool]:
        self.calls += 1
        after = int(body.get("after", "0"))
        assert after < self.cap, "paged past the cap: HubSpot answers 400"
        limit = body["limit"]

        def ok(cid: int, ms: int, f: Mapping[str, Any]) -> bool:
            x = ms if f["propertyName"] == "lastmodifieddate" else cid
            if f["operator"] == "NOT_IN":
                assert len(f["values"]) <= NOT_IN_MAX
                return x not in {int(v) for v in f["values"]}
            v = int(f["value"])
            return bool({"EQ": x == v, "GT": x > v, "GTE": x >= v}[f["operator"]])

        def lower(f: Mapping[str, Any]) -> int:
            return int(f["value"]) + (1 if f["operator"] == "GT" else 0)

        # every group bounds lastmodifieddate from below: start scanning there (only to keep this fast)
        lo = min(lower(g["filters"][0]) for g in body["filterGroups"])
        hits = [
            (cid, ms)
            for ms, cid in self.by_ms[bisect.bisect_left(self.by_ms, (lo, -1)) :]
            if any(all(ok(cid, ms, f) for f in g["filters"]) for g in body["filterGroups"])
        ]
        key = body["sorts"][0]["propertyName"]
        scramble = {cid: self.rng.random() for cid, _ in hits}  # ties: no promised order
        hits.sort(key=lambda h: (h[1] if key == "lastmodifieddate" else h[0], scramble[h[0]]))
        end = min(after + limit, self.cap)
        return hits[after:end], end < len(hits)


def read_all(
    contacts: Mapping[int, int], since: int, *, limit: int, cap: int, seed: int, seen_max: int = NOT_IN_MAX
) -> tuple[list[int], int]:
    search = FakeSearch(contacts, cap, random.Random(seed))
    out: list[int] = []
    cursor: SearchCursor | None = SearchCursor(since_ms=since)
    while cursor is not None:
        page, more = search(cursor.body(limit, []))
        out.extend(cid for cid, ms in page if cursor.is_fresh(cid, ms))
        cursor = cursor.advance(page, more, seen_max=seen_max)
    return out, search.calls


@settings(max_examples=300, deadline=None)
@given(
    stamps=st.lists(st.integers(min_value=0, max_value=12), min_size=0, max_size=120),
    since=st.integers(min_value=0, max_value=6),
    limit=st.integers(min_value=1, max_value=7),
    seen_max=st.integers(min_value=1, max_value=10),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_cursor_reads_every_change_exactly_once_whatever_the_tie_order(
    stamps: Sequence[int], since: int, limit: int, seen_max: int, seed: int
) -> None:
    # few distinct timestamps and tiny pages: tie groups straddle pages and outgrow NOT_IN
    contacts = {100 + i: ms for i, ms in enumerate(stamps)}
    out, _ = read_all(contacts, since, limit=limit, cap=limit * 2, seed=seed, seen_max=seen_max)
    expected = sorted(cid for cid, ms in contacts.items() if ms >= since)
    assert sorted(out) == expected  # no miss
    assert len(out) == len(set(out))  # no double
    # and in timestamp order: the high-water mark only ever moves forward
    assert [contacts[c] for c in out] == sorted(contacts[c] for c in out)


def test_cursor_with_hubspot_numbers_a_tie_group_past_the_cap() -> None:
    rng = random.Random(5)
    contacts: dict[int, int] = {}
    ms = 1_700_000_000_000
    cid = 1
    while cid <= 12_000:
        for _ in range(rng.choice((1, 50, 300, 10_100))):  # one group alone passes the cap
            contacts[cid] = ms
            cid += 1
        ms += 1
    out, calls = read_all(contacts, 0, limit=200, cap=10_000, seed=1)
    assert len(out) == len(set(out)) == len(contacts)
    # about one request per 200 changes: big tie groups cost a page or two more, never a re-read
    assert calls <= len(contacts) // 200 + 12


def test_search_pacer_spaces_requests_with_an_injected_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = SearchPacer(4, clock=lambda: now[0], sleep=sleep, margin=0.0)
    for _ in range(4):
        pacer.wait()
    assert slept == []
    pacer.wait()  # the fifth within the same second waits for the first to leave the window
    assert slept == [1.0]
    SearchPacer(0, clock=lambda: 0.0, sleep=sleep).wait()  # 0 = no pacing
    assert slept == [1.0]


def test_search_pacer_learns_the_limit_from_a_secondly_429() -> None:
    now = [0.0]
    pacer = SearchPacer(5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s), margin=0.0)
    for _ in range(3):
        pacer.wait()
    pacer.learn()  # the third in this second was refused: two are allowed
    assert pacer.per_second == 2
    now[0] += 5
    pacer.wait()
    pacer.learn()  # alone in its second and still refused: never below one
    assert pacer.per_second == 1
    now[0] += 29
    pacer.wait()
    assert pacer.per_second == 1  # not yet: 30 s without a 429 first
    now[0] += 31
    pacer.wait()
    assert pacer.per_second == 2  # then one more per 30 s...
    for _ in range(10):
        now[0] += 31
        pacer.wait()
    assert pacer.per_second == 5  # ...up to where it started
    unpaced = SearchPacer(0, clock=lambda: 0.0)
    for _ in range(4):
        unpaced.sent.append(0.0)
    unpaced.learn()  # pacing off, then a 429: pacing on at what was accepted
    assert unpaced.per_second == 3


def test_read_throttle_takes_retry_after_and_policy() -> None:
    body = b'{"status":"error","category":"RATE_LIMITS","policyName":"SECONDLY"}'
    assert read_throttle({"Retry-After": "3"}, body) == read_throttle({"retry-after": "3"}, body.decode())
    t = read_throttle({"Retry-After": "3"}, body)
    assert (t.wait_s, t.policy) == (3.0, "SECONDLY")
    t = read_throttle(None, b"not json")
    assert (t.wait_s, t.policy) == (1.0, "")  # HubSpot's SECONDLY 429 has no Retry-After: one window
    assert read_throttle({"Retry-After": "soon"}, None).wait_s == 1.0


def test_archived_after_keeps_only_those_past_the_mark() -> None:
    found = [ArchivedContact("1", "a@x.io", "2026-11-30T10:00:00.000Z"),
             ArchivedContact("2", None, "2026-11-30T10:00:00.001Z"),
             ArchivedContact("3", None, None)]
    mark = 1_796_032_800_000  # 2026-11-30T10:00:00.000Z
    assert [c.id for c in archived_after(found, mark, inclusive=False)] == ["2", "3"]
    assert [c.id for c in archived_after(found, mark, inclusive=True)] == ["1", "2", "3"]


def test_primaries_of_companies_keeps_type_2_only() -> None:
    results = [
        {"from": {"id": "900"}, "to": [
            {"toObjectId": 1, "associationTypes": [{"typeId": 2}, {"typeId": 280}]},
            {"toObjectId": 2, "associationTypes": [{"typeId": 280}]},
        ]},
        {"from": {"id": "901"}, "to": [{"toObjectId": 3, "associationTypes": [{"typeId": 2}]}]},
    ]
    assert primaries_of_companies(results) == {"1": "900", "3": "901"}


def test_split_list_and_http_date() -> None:
    assert split_list("12; 34;;") == ("12", "34") and split_list(None) == ()
    assert http_date("Tue, 01 Dec 2026 15:57:32 GMT").isoformat() == "2026-12-01T15:57:32+00:00"  # type: ignore[union-attr]
    assert http_date("yesterday") is None and http_date(None) is None


# --- contacts sharing an e-mail -------------------------------------------------------------------


@given(st.permutations([(1, "40", "ann@x.io", 500), (2, "7", "ann@x.io", 900), (3, "12", "ann@x.io", 900),
                        (4, "3", "bob@x.io", 100), (5, "9", None, 100), (6, "10", None, 100)]))
def test_the_same_contact_feeds_the_lead_whatever_order_the_read_gives(rows: list[Any]) -> None:
    renumbered = [(i + 1, cid, key, ms) for i, (_, cid, key, ms) in enumerate(rows)]
    skipped, owners = split_email_collisions(renumbered, {})
    assert {k: o.id for k, o in owners.items()} == {"ann@x.io": "7", "bob@x.io": "3"}  # newest; tie: lowest id
    losers = {cid: skipped[row] for row, cid, _, _ in renumbered if row in skipped}
    assert set(losers) == {"40", "12"}  # rows without an e-mail are the transform's to reject, not ours
    assert "contacts 7 and 40" in losers["40"] and "modified later" in losers["40"]
    assert "contacts 7 and 12" in losers["12"] and "lower id" in losers["12"]


def test_a_key_sent_by_an_earlier_batch_keeps_it_and_the_later_row_says_why_it_was_skipped() -> None:
    owners = {"ann@x.io": EmailOwner("40", 500, 1)}
    skipped, new = split_email_collisions([(101, "7", "ann@x.io", 900)], owners)
    assert new == {} and list(skipped) == [101]
    assert "contacts 40 and 7" in skipped[101] and "sent earlier in this run" in skipped[101]
    assert "7 is the more recently modified" in skipped[101]  # the user learns the rule wanted the other
