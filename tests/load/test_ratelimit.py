import pytest

from etl.load.ratelimit import (
    RESET_MARGIN_S,
    RateHeaders,
    RateLimiter,
    RollingBudget,
    RollingHeaders,
    parse_retry_after,
    rolling_delay,
)


def hdr(limit: int, remaining: int, reset: float) -> RateHeaders:
    return RateHeaders(limit=limit, remaining=remaining, reset_at=reset)


def test_unknown_budget_sends_at_once() -> None:
    assert RateLimiter().delay(1000.0) == 0.0


def test_spends_exactly_the_remaining_budget_then_waits_for_reset() -> None:
    lim = RateLimiter()
    now = 1000.0
    lim.on_send(now)
    lim.on_response(now, hdr(5, 4, 1060), status=201, retry_after=None)
    sent = 0
    while lim.delay(now) == 0:
        lim.on_send(now)
        sent += 1
    assert sent == 4  # the other four of the five
    assert lim.delay(now) == 1060 + RESET_MARGIN_S - now


def test_in_flight_requests_count_against_the_budget() -> None:
    lim = RateLimiter()
    lim.on_send(0.0)
    lim.on_response(0.0, hdr(10, 3, 60), status=201, retry_after=None)
    for _ in range(3):
        assert lim.delay(0.0) == 0
        lim.on_send(0.0)
    assert lim.delay(0.0) > 0  # 3 in flight, 3 remaining
    lim.on_response(0.1, hdr(10, 2, 60), status=201, retry_after=None)
    assert lim.delay(0.1) > 0  # min remaining 2, still 2 in flight


def test_out_of_order_answers_keep_the_lowest_remaining() -> None:
    lim = RateLimiter()
    lim.on_send(0)
    lim.on_send(0)
    lim.on_response(0, hdr(100, 10, 60), status=201, retry_after=None)
    lim.on_response(0, hdr(100, 50, 60), status=201, retry_after=None)  # processed earlier, arrived later
    assert lim.min_remaining == 10


def test_window_turn_restores_full_limit() -> None:
    lim = RateLimiter()
    lim.on_send(0)
    lim.on_response(0, hdr(2, 0, 60), status=201, retry_after=None)
    assert lim.delay(30) > 0
    after = 60 + RESET_MARGIN_S + 0.01
    assert lim.delay(after) == 0
    lim.on_send(after)
    lim.on_response(after, hdr(2, 1, 120), status=201, retry_after=None)
    assert lim.min_remaining == 1 and lim.reset_at == 120


def test_retry_after_blocks_every_send() -> None:
    lim = RateLimiter()
    lim.on_send(0)
    lim.on_response(0, hdr(100, 0, 60), status=429, retry_after=7)
    assert lim.throttled == 1
    assert lim.delay(1.0) >= 6.0


def test_user_cap_spaces_sends_evenly() -> None:
    lim = RateLimiter(cap_per_min=120)  # one every 0.5 s
    lim.on_send(0)
    assert abs(lim.delay(0) - 0.5) < 1e-9
    assert lim.delay(0.5) == 0


def test_budget_per_min_is_the_lower_of_server_and_cap() -> None:
    lim = RateLimiter(cap_per_min=50)
    lim.on_send(0)
    lim.on_response(0, hdr(100, 99, 60), status=200, retry_after=None)
    assert lim.budget_per_min == 50


def test_parse_headers_and_retry_after() -> None:
    assert RateHeaders.parse({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "5", "x-ratelimit-reset": "17"}) == hdr(
        100, 5, 17
    )
    assert RateHeaders.parse({"x-ratelimit-limit": "x"}) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_a_429_with_a_sooner_reset_does_not_freeze_the_whole_window() -> None:
    lim = RateLimiter()
    lim.on_send(0)
    lim.on_response(0, hdr(1000, 900, 60), status=201, retry_after=None)
    lim.on_send(1)
    lim.on_response(1, hdr(1000, 0, 2), status=429, retry_after=1)  # e.g. a burst limiter upstream
    assert lim.delay(1.5) > 0
    assert lim.delay(2 + RESET_MARGIN_S + 0.01) == 0  # not 60 s later
    lim.on_send(3)
    lim.on_response(3, hdr(1000, 898, 60), status=201, retry_after=None)
    assert lim.min_remaining == 898 and lim.reset_at == 60


def test_provisional_window_yields_to_the_servers_reset() -> None:
    lim = RateLimiter()
    lim.on_send(0)
    lim.on_response(0, hdr(3, 0, 10), status=201, retry_after=None)
    turn = 10 + RESET_MARGIN_S + 0.1
    lim.on_send(turn)  # provisional reset turn + 60
    lim.on_response(turn, hdr(3, 2, 20), status=201, retry_after=None)
    assert lim.reset_at == 20 and lim.min_remaining == 2


# --- HubSpot's rolling window --------------------------------------------------------------------


def test_rolling_delay_sends_at_once_until_the_window_is_full_then_waits_for_the_oldest_slot() -> None:
    assert rolling_delay(5.0, [1.0, 2.0], limit=3, window_s=10.0) == 0.0
    assert rolling_delay(5.0, [1.0, 2.0, 3.0], limit=3, window_s=10.0) == pytest.approx(6.0)  # 1.0 frees at 11
    assert rolling_delay(5.0, [1.0, 2.0, 3.0], limit=3, window_s=10.0, margin=0.1) == pytest.approx(6.1)
    # more sent than the limit (the limit was learned lower): the slot that frees room for one more
    assert rolling_delay(5.0, [1.0, 2.0, 3.0, 4.0], limit=2, window_s=10.0) == pytest.approx(8.0)
    # slots older than the window count for nothing; an unknown (0) limit holds nothing back
    assert rolling_delay(20.0, [1.0, 2.0, 3.0], limit=3, window_s=10.0) == 0.0
    assert rolling_delay(5.0, [1.0, 2.0, 3.0], limit=0, window_s=10.0) == 0.0


def test_rolling_headers_are_read_case_blind_and_only_when_complete() -> None:
    h = {"x-hubspot-ratelimit-max": "100", "X-HubSpot-RateLimit-Remaining": "97",
         "X-HUBSPOT-RATELIMIT-INTERVAL-MILLISECONDS": "10000"}
    assert RollingHeaders.parse(h) == RollingHeaders(limit=100, remaining=97, window_s=10.0)
    assert RollingHeaders.parse({"X-HubSpot-RateLimit-Max": "100"}) is None  # a search answer has none at all
    assert RollingHeaders.parse(None) is None


def test_rolling_budget_learns_limit_and_window_from_the_first_answer_and_spends_it_whole() -> None:
    budget = RollingBudget(margin=0.0)
    assert budget.delay(0.0) == 0.0  # nothing known yet: nothing held back
    t = 0.0
    for i in range(5):
        assert budget.delay(t) == 0.0  # the whole budget goes at once: no 429 to fear below the limit
        budget.on_answer(t, RollingHeaders(limit=5, remaining=4 - i, window_s=2.0))
        t += 0.1
    assert budget.limit == 5 and budget.window_s == 2.0
    assert budget.delay(t) == pytest.approx(2.0 - t)  # the first answer's slot frees at 2.0


def test_rolling_budget_counts_another_process_on_the_same_token() -> None:
    budget = RollingBudget(margin=0.0)
    budget.on_answer(1.0, RollingHeaders(limit=10, remaining=2, window_s=10.0))  # 8 used, 1 of them ours
    assert len(budget.sent) == 8
    for _ in range(2):
        budget.on_answer(1.0, RollingHeaders(limit=10, remaining=1, window_s=10.0))
    assert budget.delay(1.5) == pytest.approx(9.5)


def test_rolling_budget_a_429_teaches_the_limit_but_takes_no_slot() -> None:
    budget = RollingBudget(margin=0.0)
    budget.on_answer(3.0, RollingHeaders(limit=100, remaining=0, window_s=10.0), throttled=True)
    assert budget.limit == 100 and not budget.sent  # its Retry-After is what the caller waits
