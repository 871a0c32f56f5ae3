from etl.load.ratelimit import RESET_MARGIN_S, RateHeaders, RateLimiter, parse_retry_after


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
