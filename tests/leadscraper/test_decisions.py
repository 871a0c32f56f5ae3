"""LeadScraper's pure decisions: filters, cursors, names, frames, the detail choice, the budget, pacing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from etl.errors import UsageError
from etl.extract.leadscraper import (
    DETAIL_COLUMNS,
    Budget,
    CursorTrail,
    Filters,
    SourceUnavailable,
    error_of,
    leads_frame,
    newest,
    split_name,
    wants_detail,
)
from etl.load.ratelimit import RateHeaders, RateLimiter
from etl.mapping import Mapping


def test_filters_go_to_the_server_as_the_seed_names_them() -> None:
    f = Filters(job_id="job_1", score_min=70, score_max=90, status="hot",
                created_after=datetime(2026, 2, 1, 10, tzinfo=UTC))
    assert f.params() == {"limit": "100", "sort": "created_at", "order": "asc", "job_id": "job_1",
                          "score_min": "70", "score_max": "90", "status": "hot",
                          "created_after": "2026-02-01T10:00:00Z"}


@pytest.mark.parametrize("kw", [{"score_min": 101}, {"score_max": -1}, {"score_min": 80, "score_max": 20},
                                {"status": "lukewarm"}])
def test_impossible_filters_are_usage_errors(kw: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        Filters(**kw)  # type: ignore[arg-type]


def test_cursor_trail_follows_has_more_and_refuses_a_repeated_cursor() -> None:
    trail = CursorTrail()
    assert trail.advance({"has_more": True, "next_cursor": "a"}) and trail.cursor == "a"
    assert trail.advance({"has_more": True, "next_cursor": "b"})
    with pytest.raises(SourceUnavailable, match="same cursor twice"):
        trail.advance({"has_more": True, "next_cursor": "a"})
    assert not CursorTrail().advance({"has_more": False, "next_cursor": "z"})  # has_more decides, not the cursor
    with pytest.raises(SourceUnavailable, match="no next_cursor"):
        CursorTrail().advance({"has_more": True})


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [("John Doe", "John", "Doe"), ("Madonna", "Madonna", None), ("Dr. Jane van der Berg Jr.", "Jane", "van der Berg"),
     ("Mary Ann Smith", "Mary Ann", "Smith"), ("  ", None, None), (None, None, None)],
)
def test_names_are_split_by_nameparser(full: str | None, first: str | None, last: str | None) -> None:
    assert split_name(full) == (first, last)


def test_a_page_becomes_string_columns_with_running_row_numbers() -> None:
    frame = leads_frame([{"id": "l1", "email": "a@b.co", "lead_score": 85, "full_name": "Ann Lee"},
                         {"id": "l2", "email": None}], 101, detail=False)
    assert frame.get_column("_row").to_list() == [101, 102]
    assert frame.row(0, named=True)["lead_score"] == "85"
    assert frame.row(0, named=True)["last_name"] == "Lee"
    assert not set(DETAIL_COLUMNS) & set(frame.columns)
    detailed = leads_frame([{"id": "l1", "signals_detected": ["hiring", "recent_funding"],
                             "enrichment_data": {"industry": "SaaS", "confidence_score": 0.92}}], 1, detail=True)
    row = detailed.row(0, named=True)
    assert row["signals_detected"] == "hiring, recent_funding"
    assert row["enrichment_industry"] == "SaaS" and row["enrichment_data"] == "industry: SaaS; confidence_score: 0.92"


def test_details_are_read_only_when_the_mapping_names_a_detail_column() -> None:
    builtin = Mapping.builtin("leadscraper")
    assert not wants_detail(builtin)
    raw = builtin.to_dict()
    raw["notes"] = [*raw["notes"], {"column": ["Signals Detected"], "label": "Signals"}]
    raw.pop("description")
    assert wants_detail(Mapping.from_dict(raw))


def test_errors_and_watermarks_are_read_from_any_shape() -> None:
    assert error_of({"error": {"code": "rate_limit_exceeded", "message": "m", "retry_after": 60}}) == (
        "rate_limit_exceeded", "m", None, 60.0)
    assert error_of("<html>") == ("unknown", "unexpected answer", None, None)
    assert newest(["2026-02-10T10:35:12Z", None, "bad", "2026-02-11T00:00:00Z"]) == datetime(2026, 2, 11, tzinfo=UTC)


def test_the_budget_statement_compares_requests_needed_with_requests_left() -> None:
    ok = Budget(12, 0, 1000, 500, 1_800_000_000.0)
    assert ok.covered and "12 LeadScraper request(s)" in ok.message() and "covered" in ok.message()
    short = Budget(15, 1500, 1000, 40, 1_800_000_000.0)
    assert short.covered is False and short.needed == 1515
    assert "only 40 are left" in short.message() and "2 more window(s)" in short.message()
    partial = Budget(10, 0, 10, 0, 1_800_000_000.0, partial=True)
    assert "does not cover" in partial.message() and "more than 10" in partial.message()


def test_an_hourly_budget_is_spent_evenly_over_what_is_left_of_the_window() -> None:
    lim = RateLimiter(window_s=3600.0, pace=True)
    now = 1_000.0
    assert lim.delay(now) == 0  # nothing known yet: the first request learns the budget
    lim.on_send(now)
    lim.on_response(now, RateHeaders(limit=100, remaining=99, reset_at=now + 3600), status=200, retry_after=None)
    wait = lim.delay(now)
    assert wait == pytest.approx((3600 + 0.25) / 99, rel=1e-3)  # ~36 s: 99 left over the hour
    assert lim.delay(now + wait) == 0
    fast = RateLimiter(window_s=3600.0)  # the LeadGenius way: no pacing, spend as answers come
    fast.on_send(now)
    fast.on_response(now, RateHeaders(limit=100, remaining=99, reset_at=now + 60), status=200, retry_after=None)
    assert fast.delay(now) == 0


def test_a_429_holds_every_send_until_retry_after() -> None:
    lim = RateLimiter(window_s=3600.0, pace=True)
    lim.on_send(0.0)
    lim.on_response(0.0, RateHeaders(limit=10, remaining=0, reset_at=3600), status=429, retry_after=60)
    assert lim.delay(1.0) >= 59.0
