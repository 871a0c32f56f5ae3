"""One function at the response boundary decides: retry, refresh auth, fail this lead, or stop."""

from __future__ import annotations

from enum import Enum
from typing import Any

import httpx

from etl.errors import (
    ApiError,
    AuthExpiredError,
    FatalApiError,
    RetriableApiError,
    SkippableApiError,
)
from etl.load.ratelimit import parse_retry_after

SERVER_ERROR_STATUSES = frozenset({500, 502, 503, 504})
"""Transient server answers (a plain 500 is replayed only a few times: `RetryPolicy`)."""
RETRY_STATUSES = frozenset({429}) | SERVER_ERROR_STATUSES
"""The statuses worth sending the same request again for; every client here uses these."""

MAX_TOKEN_RENEWALS = 8
"""Renewed tokens one request may be refused with `token_expired` before the run stops."""


class Verdict(Enum):
    OK = "ok"
    RETRY = "retry"
    REFRESH = "refresh"
    FAIL_LEAD = "fail_lead"
    STOP = "stop"


def classify_status(status: int, error_type: str | None = None) -> Verdict:
    """Pure decision on an HTTP status (and the API's errorType)."""
    if status < 400:
        return Verdict.OK
    if status in RETRY_STATUSES:
        return Verdict.RETRY
    if status == 401:
        if error_type in ("token_expired", "no_valid_tokens"):
            return Verdict.REFRESH
        return Verdict.STOP
    if status == 403:
        return Verdict.STOP
    if status >= 500:
        # A 500 may be transient; the retry policy bounds how often it is replayed.
        return Verdict.RETRY
    return Verdict.FAIL_LEAD


def renew_after_401(error_type: str | None, renewals: int) -> bool:
    """Whether a request refused with 401 `error_type`, after `renewals` renewed tokens, gets
    another renewed token and is sent again (pure).

    `token_expired`: the token ran out while the request waited (a concurrency slot, the rate
    budget, a back-off, a Retry-After); the credentials are fine, so renew every time, bounded
    (a server whose clock calls every fresh token expired would loop forever). `no_valid_tokens`
    (an unknown or revoked token): renew once; refused again, it is the credentials. Anything
    else (`no_valid_credentials`): stop.
    """
    if error_type == "token_expired":
        return renewals < MAX_TOKEN_RENEWALS
    if error_type == "no_valid_tokens":
        return renewals < 1
    return False


def error_fields(body: Any) -> tuple[str, str | None]:
    """(message, errorType) from the API's error body, tolerant of any shape."""
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("message") or "error")
        details = body.get("details")
        if details and str(details) not in message:
            message = f"{message}: {details}"
        error_type = body.get("errorType")
        return message, str(error_type) if error_type else None
    return "unexpected answer", None


def raise_for_response(response: httpx.Response) -> Any:
    """Return the JSON body of a success, or raise the ApiError subclass that says what to do."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status < 400:
        if body is None:
            raise RetriableApiError(f"HTTP {status} with a body that is not JSON", status=status)
        return body
    message, error_type = error_fields(body)
    message = f"HTTP {status}: {message}"
    verdict = classify_status(status, error_type)
    if verdict is Verdict.RETRY:
        raise RetriableApiError(
            message,
            status=status,
            error_type=error_type,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if verdict is Verdict.REFRESH:
        raise AuthExpiredError(message, status=status, error_type=error_type)
    if verdict is Verdict.STOP:
        raise FatalApiError(message, status=status, error_type=error_type)
    raise SkippableApiError(message, status=status, error_type=error_type)


def request_maybe_sent(exc: BaseException) -> bool:
    """A transport error after which the server may have acted on the request (answer unknown)."""
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
    )


__all__ = [
    "ApiError",
    "Verdict",
    "classify_status",
    "error_fields",
    "raise_for_response",
    "renew_after_401",
    "request_maybe_sent",
]
