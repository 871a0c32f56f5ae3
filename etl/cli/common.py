"""Options and helpers shared by the import-style commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer

from etl import log
from etl.config import Settings
from etl.errors import UsageError

T = TypeVar("T")

BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", envvar="LEADGENIUS_BASE_URL", help="LeadGenius API root.")
]
AuthFileOpt = Annotated[
    Path | None, typer.Option("--auth-file", envvar="LEADGENIUS_AUTH_FILE", help="Auth file (0600).")
]
StateOpt = Annotated[str | None, typer.Option("--state", envvar="LEADGENIUS_ETL_STATE", help="State: a SQLite file or a postgresql:// URL.")]
InsecureOpt = Annotated[
    bool, typer.Option("--allow-insecure-http", help="Allow plain http:// to a non-loopback host.")
]
MappingOpt = Annotated[Path | None, typer.Option("--mapping", help="Mapping TOML (default: the built-in one).")]
ModeOpt = Annotated[str, typer.Option("--mode", help="insert (default) or upsert.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Extract, transform, validate, predict; write nothing.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write the run report JSON here.")]
RejectsOpt = Annotated[Path | None, typer.Option("--rejects", help="Write rejected rows (CSV) here.")]
HtmlOpt = Annotated[Path | None, typer.Option("--report-html", help="Write a self-contained HTML report here.")]
RateOpt = Annotated[float | None, typer.Option("--rate", help="Cap requests per minute (default: learn it).")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, max=256, help="Requests in flight.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit 1 when any row was rejected.")]
DefaultRegionOpt = Annotated[
    str | None,
    typer.Option(
        "--default-region",
        help="Read phone numbers written without + in this country (US, GB, DE, Germany, …) when the row's "
        "country column gives none; they are stored as E.164 (+14155550100).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary table.")]


def settings_from(
    *, base_url: str | None = None, auth_file: Path | None = None, state: str | None = None,
    allow_insecure_http: bool = False, **extra: Any,
) -> Settings:
    overrides: dict[str, Any] = {"base_url": base_url, "auth_file": auth_file, **extra}
    if allow_insecure_http:
        overrides["allow_insecure_http"] = True
    return Settings.from_env(state=state, **overrides)


def check_mode(mode: str) -> str:
    if mode not in ("insert", "upsert"):
        raise UsageError(f"--mode must be insert or upsert, not {mode!r}")
    return mode


def run_async(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return anyio.run(fn)


def setup_logging(quiet: bool) -> None:
    # On a terminal the progress bar speaks; structlog carries warnings only. Off a terminal, JSON lines.
    level = os.environ.get("LEADGENIUS_ETL_LOG_LEVEL") or ("WARNING" if sys.stderr.isatty() or quiet else "INFO")
    log.configure(level=level)


class ProgressBar:
    """A rich progress bar on a terminal (leads/s, ETA, 429s seen); nothing off a terminal."""

    def __init__(self, enabled: bool, total: int | None = None, label: str = "leads") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None
        self.total = total
        self.label = label
        self.seen: dict[str, int] = {}

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[extra]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, rate="", extra="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def __call__(self, event: str, n: int = 1) -> None:
        self.seen[event] = self.seen.get(event, 0) + n
        if self._progress is None:
            return
        if event == "planned":  # the sends a batch needs: the bar's total grows batch by batch
            self._progress.update(self._task, total=self.seen["planned"])
            return
        done = sum(self.seen.get(k, 0) for k in ("created", "updated", "failed", "exported", "deleted", "restored"))
        task = self._progress.tasks[0]
        speed = f"{task.speed or 0:.1f}/s"
        extra = " ".join(f"{k}={v}" for k, v in self.seen.items() if k not in ("extracted", "planned"))
        self._progress.update(self._task, completed=done, rate=speed, extra=extra)


def console_out(quiet: bool) -> AbstractContextManager[Any]:
    return nullcontext()
