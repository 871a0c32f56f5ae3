"""Errors, named by what the caller should do (singer-sdk style).

`EtlError` subclasses end a CLI run with one clear line and a SPEC Part B exit code.
`ApiError` subclasses are raised at the HTTP response boundary by one classifier.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class EtlError(Exception):
    """A run-ending error with a user-facing message. Never carries a secret."""

    exit_code: int = 2


class UsageError(EtlError):
    """Fix the command line or the configuration, then run again."""

    exit_code = 2


class InputFileError(EtlError):
    """Fix or replace the input file, then run again."""

    exit_code = 2


class ConfigError(EtlError):
    """Fix the mapping / job file / environment, then run again."""

    exit_code = 2


class StateNotFound(UsageError):
    """A command that only reads the state found none where --state / LEADGENIUS_ETL_STATE points: fix the
    setting, or run an import or sync (which creates the state). Nothing was created there."""


class CredentialsRejected(EtlError):
    """Log in again (`leadgenius-etl auth login`) or fix the API key."""

    exit_code = 3


class TargetUnreachable(EtlError):
    """The target stayed unreachable after retries; try again later."""

    exit_code = 3


class StateUnavailable(EtlError):
    """The state database (LEADGENIUS_ETL_STATE) refused the connection or went away; fix it or try again.
    Everything committed before stays, and the next run resumes from it."""

    exit_code = 3


class JobLocked(EtlError):
    """Another run of the same job holds the lock; wait for it."""

    exit_code = 4

    def __init__(self, message: str, *, holder: str = "another process") -> None:
        super().__init__(message)
        self.holder = holder  # who holds the lock, for a message of the caller's own: "pid 4242"


class RunStillRunning(JobLocked):
    """The run to undo has not ended and its process still holds the run's lock; wait for it or stop it."""


# --- the response boundary -------------------------------------------------


class ApiError(Exception):
    """An answer from an API that was not a success."""

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type


class RetriableApiError(ApiError):
    """Back off and send the same request again (429, 5xx, timeouts, dropped connections)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, error_type=error_type)
        self.retry_after = retry_after


class AuthExpiredError(ApiError):
    """Renew the token and send the request again (how often: `classify.renew_after_401`)."""

    token: str | None = None
    """The access token the server refused (set by the client; never part of the message)."""


class SkippableApiError(ApiError):
    """This one record was refused; record it as failed and go on."""


class FatalApiError(ApiError):
    """Stop the run: retrying or skipping cannot help (bad credentials, permissions)."""


INTERNAL_ERROR = 70
"""SPEC Part B: anything that is not an EtlError, a native crash in polars/pandera/pyarrow included."""


def exit_code_for(exc: BaseException) -> int:
    """The SPEC Part B exit code a run that stopped on `exc` ends with.

    Not `except Exception`: pyo3's PanicException (a Rust panic inside polars) derives from
    BaseException, and it is an internal error like any other.
    """
    if isinstance(exc, BaseExceptionGroup):
        exc = first_error(exc)
    if isinstance(exc, EtlError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return INTERNAL_ERROR


def error_line(exc: BaseException) -> str:
    """One line that says what stopped a run: the message of an EtlError, else the error's type
    and the first line of its message (a native panic's message can span lines)."""
    if isinstance(exc, BaseExceptionGroup):
        exc = first_error(exc)
    if isinstance(exc, EtlError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a task group: a run-ending EtlError first, else the first one."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, EtlError)), leaves[0])


@contextmanager
def unwrapped_errors() -> Iterator[None]:
    """Task groups wrap errors in an ExceptionGroup; callers of ours expect the error itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        raise first_error(group) from None
