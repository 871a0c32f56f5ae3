import httpx
import pytest

from etl.errors import AuthExpiredError, FatalApiError, RetriableApiError, SkippableApiError
from etl.load.classify import Verdict, classify_status, raise_for_response, request_maybe_sent


@pytest.mark.parametrize(
    ("status", "error_type", "verdict"),
    [
        (200, None, Verdict.OK),
        (201, None, Verdict.OK),
        (429, "rate_limit_exceeded", Verdict.RETRY),
        (502, None, Verdict.RETRY),
        (503, None, Verdict.RETRY),
        (504, None, Verdict.RETRY),
        (500, "internal_error", Verdict.RETRY),
        (401, "token_expired", Verdict.REFRESH),
        (401, "no_valid_tokens", Verdict.REFRESH),
        (401, "no_valid_credentials", Verdict.STOP),
        (403, "insufficient_permissions", Verdict.STOP),
        (400, "missing_required_field", Verdict.FAIL_LEAD),
        (404, "not_found", Verdict.FAIL_LEAD),
        (409, "already_exists", Verdict.FAIL_LEAD),
    ],
)
def test_classify_status(status: int, error_type: str | None, verdict: Verdict) -> None:
    assert classify_status(status, error_type) is verdict


def test_retry_statuses_are_the_ones_classify_retries() -> None:
    from etl.load.classify import RETRY_STATUSES, SERVER_ERROR_STATUSES

    assert {429} | SERVER_ERROR_STATUSES == RETRY_STATUSES
    assert all(classify_status(s) is Verdict.RETRY for s in RETRY_STATUSES)


def body(status: int, error_type: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"success": False, "error": "boom", "errorType": error_type, "details": "d"}, headers=headers
    )


def test_raise_for_response_maps_to_errors_named_by_action() -> None:
    assert raise_for_response(httpx.Response(200, json={"success": True})) == {"success": True}
    with pytest.raises(RetriableApiError) as exc:
        raise_for_response(body(429, "rate_limit_exceeded", {"Retry-After": "4"}))
    assert exc.value.retry_after == 4.0
    with pytest.raises(AuthExpiredError):
        raise_for_response(body(401, "token_expired"))
    with pytest.raises(FatalApiError):
        raise_for_response(body(403, "insufficient_permissions"))
    with pytest.raises(SkippableApiError) as skip:
        raise_for_response(body(400, "invalid_value"))
    assert "boom: d" in skip.value.message and skip.value.status == 400


def test_non_json_success_is_retried() -> None:
    with pytest.raises(RetriableApiError):
        raise_for_response(httpx.Response(200, text="<html>gateway</html>"))


def test_request_maybe_sent() -> None:
    req = httpx.Request("POST", "http://x")
    assert not request_maybe_sent(httpx.ConnectError("refused", request=req))
    assert request_maybe_sent(httpx.ReadTimeout("slow", request=req))
    assert request_maybe_sent(httpx.RemoteProtocolError("dropped", request=req))


def test_retry_policy_counts_only_500s_toward_their_cap() -> None:
    from unittest.mock import Mock

    from etl.load.api import RetryPolicy

    policy = RetryPolicy(max_attempts=8, max_500_attempts=2)
    stop = policy.stopper()

    def attempt(n: int, status: int) -> Mock:
        outcome = Mock()
        outcome.exception.return_value = RetriableApiError("x", status=status)
        return Mock(attempt_number=n, outcome=outcome)

    assert not stop(attempt(1, 429))
    assert not stop(attempt(2, 503))
    assert not stop(attempt(3, 500))  # the first 500
    assert stop(attempt(4, 500))  # the second
