"""The typer application; each command lives in its own module under etl/cli/."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from etl.errors import INTERNAL_ERROR, EtlError, error_line, first_error
from etl.log import redact_text

app = typer.Typer(
    name="leadgenius-etl",
    help="Move B2B leads into and out of LeadGenius Pro: never lose a lead, never double one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    print(f"leadgenius-etl: error: {redact_text(message)}", file=sys.stderr)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn EtlError into one line on stderr and its SPEC exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return func(*args, **kwargs)
            except BaseExceptionGroup as group:  # a task group's wrapper: report what happened inside
                raise first_error(group) from None
        except EtlError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            print("leadgenius-etl: interrupted; run the same command again to resume.", file=sys.stderr)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BaseException as exc:  # not Exception: pyo3's PanicException (a Rust panic) is a BaseException
            if os.environ.get("LEADGENIUS_ETL_DEBUG"):
                raise
            raise fail(
                f"internal error: {error_line(exc)} (set LEADGENIUS_ETL_DEBUG=1 for details)", INTERNAL_ERROR
            ) from None

    return wrapper  # type: ignore[return-value]
