"""Options and helpers shared by the import-style commands."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast, get_type_hints

import anyio
import typer

from etl import log
from etl.config import Settings
from etl.errors import UsageError
from etl.load.plan import Mode
from etl.pipeline import ImportOptions
from etl.report import RunReport, summary_table

if TYPE_CHECKING:
    from etl.mapping import Mapping

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

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


def check_mode(mode: str) -> Mode:
    if mode in ("insert", "upsert"):
        return cast(Mode, mode)
    raise UsageError(f"--mode must be insert or upsert, not {mode!r}")


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


def finish(report: RunReport, quiet: bool) -> None:
    """Print the summary table (stdout) and exit with the report's code."""
    if not quiet:
        from rich.console import Console

        console = Console(file=sys.stdout)
        budget = report.source_info.get("budget")
        if isinstance(budget, dict) and budget.get("message"):  # a rate-limited source: what the read costs
            colour = "yellow" if budget.get("covered") is False else "bold"
            console.print(f"[{colour}]{budget['message']}[/{colour}]", highlight=False)
        console.print(summary_table(report))
        if report.target.get("reachable") is False:
            console.print(f"[yellow]target not read: {report.target.get('reason')}[/yellow]")
        if report.counts.failed:
            console.print(f"[red]{report.counts.failed} lead(s) refused by the target; see the report[/red]")
        if report.counts.missing:
            console.print(f"[red]{report.counts.missing} lead(s) acknowledged but missing after repair[/red]")
    raise typer.Exit(report.exit_code or 0)


# --- the common import options: declared once, added to every `import` command --------------

_COMMON: tuple[tuple[str, Any, Any], ...] = (
    ("mapping", MappingOpt, None),
    ("mode", ModeOpt, "insert"),
    ("dry_run", DryRunOpt, False),
    ("report", ReportOpt, None),
    ("rejects", RejectsOpt, None),
    ("report_html", HtmlOpt, None),
    ("rate", RateOpt, None),
    ("concurrency", ConcurrencyOpt, 8),
    ("strict", StrictOpt, False),
    ("default_region", DefaultRegionOpt, None),
    ("quiet", QuietOpt, False),
    ("base_url", BaseUrlOpt, None),
    ("auth_file", AuthFileOpt, None),
    ("state", StateOpt, None),
    ("allow_insecure_http", InsecureOpt, False),
)


@dataclass(frozen=True)
class ImportCommon:
    """The options every `import` command takes (SPEC Part B "common options" and friends)."""

    mapping: Path | None = None
    mode: str = "insert"
    dry_run: bool = False
    report: Path | None = None
    rejects: Path | None = None
    report_html: Path | None = None
    rate: float | None = None
    concurrency: int = 8
    strict: bool = False
    default_region: str | None = None
    quiet: bool = False
    base_url: str | None = None
    auth_file: Path | None = None
    state: str | None = None
    allow_insecure_http: bool = False

    def settings(self, **extra: Any) -> Settings:
        return settings_from(base_url=self.base_url, auth_file=self.auth_file, state=self.state,
                             allow_insecure_http=self.allow_insecure_http, **extra)

    def options(self, client: str, *, job: str | None = None) -> ImportOptions:
        from etl.transform.values import region_option

        return ImportOptions(
            client=client, mode=check_mode(self.mode), dry_run=self.dry_run, report_path=self.report,
            rejects_path=self.rejects, html_path=self.report_html, rate=self.rate, concurrency=self.concurrency,
            strict=self.strict, job=job, default_region=region_option(self.default_region),
        )

    def load_mapping(self, builtin: str) -> Mapping:
        from etl.mapping import Mapping

        return Mapping.load(self.mapping) if self.mapping else Mapping.builtin(builtin)

    def progress_bar(self) -> ProgressBar:
        return ProgressBar(enabled=not self.quiet and not self.dry_run)


def import_options(func: F) -> F:
    """Add the common import options to a typer command, which receives them as `common: ImportCommon`.

    One declaration instead of a copy per command: a new common option is a line in `_COMMON`
    and a field of `ImportCommon`.
    """
    hints = get_type_hints(func, include_extras=True)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(func).parameters.values() if p.name != "common"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
             for name, annotation, default in _COMMON]
    names = [name for name, _a, _d in _COMMON]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        common = ImportCommon(**{name: kwargs.pop(name) for name in names if name in kwargs})
        return func(*args, common=common, **kwargs)

    params = [*own, *added]
    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]
