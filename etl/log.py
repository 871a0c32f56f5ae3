"""structlog set-up: JSON off a terminal, console on one, never a secret in a line."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(pass(word)?|token|secret|api[_-]?key|authorization|cookie)", re.IGNORECASE)
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_REDACTED = "[REDACTED]"
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it shows up."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact_text(text: str) -> str:
    """Mask known secrets and anything shaped like a JWT."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return _JWT.sub(_REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key) and value not in (None, "", 0, False) and not isinstance(value, bool | int):
        return _REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: secrets never leave the process in a log line."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


class _CurrentStderr(structlog.PrintLogger):
    """Writes to whatever `sys.stderr` is at each line, not the stream current at `configure`: a host
    (Dagster's captured op output, pytest, click's CliRunner) may swap that stream and close it, and the
    next warning then failed the run with "ValueError: I/O operation on closed file"."""

    def msg(self, message: str) -> None:
        with _STDERR_LOCK:
            print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


_STDERR_LOCK = threading.Lock()


def configure(*, level: str = "INFO", json: bool | None = None, stream: Any = None) -> None:
    """JSON lines when stderr is not a terminal, a console renderer when it is."""
    out = stream or sys.stderr
    factory: Any = structlog.PrintLoggerFactory(file=stream) if stream is not None else (lambda *_: _CurrentStderr())
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get_logger(**bind: Any) -> Any:
    return structlog.get_logger().bind(**bind)
