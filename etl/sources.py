"""What a source is, and which sources exist.

A source yields `SourceBatch`es: a polars frame of source rows, the rows it could not read, a
few counters, and (incremental sources) a typed `watermark`. Sync sources run in a worker
thread; async ones (HTTP APIs read with httpx) run on the event loop.

`SOURCES` is the registry that the CLI, `JobSpec` and `run_job` read. Adding a source means:
one module under `etl/extract/` (the reader, its `Source` class, and `job_source` or
`incremental` for job files), one `mappings/<name>.toml`, one sandbox under `etl/sandbox/<name>/`,
its tests, and one entry below; its `command` (a help text and its own `SourceOption`s) gives it
`leadgenius-etl import <name>` with the common options, with no code in `etl/cli/`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any, Protocol

import polars as pl

from etl.report import no_rejects


@dataclass(frozen=True)
class SourceBatch:
    """One batch from a source.

    `frame`: `_row` (1-based, running across the run) + source columns, all String.
    `rejects`: rows the reader could not read: `_row`, `_reason`, `_rule` + columns.
    `counters`: counts this batch adds to the report's `source_info` (summed across batches).
    `watermark`: the newest change time this batch holds (an incremental source's mark
    candidate); the run keeps the highest.
    """

    frame: pl.DataFrame
    rejects: pl.DataFrame = field(default_factory=no_rejects)
    counters: dict[str, int] = field(default_factory=dict)
    watermark: datetime | None = None


class SyncSource(Protocol):
    """A synchronous extractor; the pipeline runs it in a worker thread."""

    name: str

    def batches(self) -> Iterator[SourceBatch]: ...


class AsyncSource(Protocol):
    """An extractor that is itself async (e.g. the LeadGenius bulk list)."""

    name: str

    def abatches(self) -> AsyncIterator[SourceBatch]: ...


Source = SyncSource | AsyncSource


def source_requests(source: object) -> dict[str, Any]:
    """What a source that reads an HTTP API sent: `{"api": "HubSpot", "total": n, …its own counts}`.

    A source says it with an `api_requests()` method (read once the extraction is over, or stopped);
    a file source has none: `{}`. The report keeps it apart from `requests` (the LeadGenius target's)."""
    method = getattr(source, "api_requests", None)
    return dict(method()) if callable(method) else {}


class Incremental:
    """A source read since a stored mark: the adapter `etl.jobs.run_incremental` drives.

    Required: `mark` (the mark's name in the state), `lookback` (re-read that much before the
    mark: writes that become visible late), `source(since)` (the read; `None` = everything).
    The hooks below have the plain behaviour by default; a source overrides what it needs
    (HubSpot: full runs every so often, archived contacts, a mark from HubSpot's own clock).
    """

    mark: str
    lookback: timedelta

    def source(self, since: datetime | None) -> Source:
        raise NotImplementedError

    def begin(self, state: Any, job: str, *, stored: datetime | None, since: datetime | None, full: bool,
              now: datetime) -> tuple[datetime | None, str | None]:
        """Before the read: (read changes since, why the run reads everything instead or None)."""
        if full:
            return None, "--full"
        start = since or (stored - self.lookback if stored else None)
        return start, None if start else "first run"

    def next_mark(self, watermark: datetime | None, run_start: datetime) -> datetime | None:
        """The mark this run earns if every lead is confirmed: the newest change read, never past
        the run's start (a source clock ahead of ours must not skip what is written meanwhile)."""
        return min(watermark, run_start) if watermark is not None else None

    async def settle(self, settings: Any, report: Any, *, confirmed: bool, transport: Any) -> bool:
        """After the import, before the mark moves (e.g. act on deletions); False keeps the mark."""
        return confirmed

    def commit(self, state: Any, job: str, *, confirmed: bool, mark: datetime | None, now: datetime,
               run_id: str | None) -> None:
        """Store the source's own marks, in the state that moves the main one (`run_id`: the run that
        moved them, so that undoing it moves them back)."""

    def describe(self) -> dict[str, Any]:
        """Source-specific facts for the report's `source_info` (request counts, filters, …)."""
        return {}


@dataclass(frozen=True)
class SourceOption:
    """One option of `leadgenius-etl import <source>`, declared by the source (etl.cli makes it a
    typer option). `name` is the job-file key, the `JobSpec` field or `params` key the value goes to,
    and the flag: `score_min` -> `--score-min`."""

    name: str
    type: type[str] | type[int] | type[float] | type[bool] = str
    help: str = ""
    envvar: str | None = None
    min: int | None = None
    max: int | None = None
    metavar: str | None = None
    settings: bool = False
    """Also overrides the `Settings` field of that name (an API root such as `hubspot_base_url`)."""
    job_key: bool = True
    """False for a command-line-only option (`job`: a job file names itself with `name`)."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


LOOKBACK = SourceOption(
    "lookback", metavar="DURATION",
    help="Re-read this much before the mark: 90s, 10m, 1h (HubSpot default 10m: its search index lags; "
         "LeadScraper default 2m).",
)
"""`--lookback` of every incremental source (and of `sync`)."""


@dataclass(frozen=True)
class SourceCommand:
    """`leadgenius-etl import <source>`: its help (the first line is its summary in `import --help`) and
    its own options. Every command also takes `--client` and the common options (etl.cli.common); the
    values become a `JobSpec` (`job`: its name) that `etl.jobs.run_spec` runs, as a job file would."""

    help: str
    options: tuple[SourceOption, ...] = ()


@dataclass(frozen=True)
class SourceKind:
    """One registry line: where a source's code lives and what a job file may say about it."""

    name: str
    module: str
    """The extract module, imported only when the source is used. It provides `job_source(spec,
    settings, mapping) -> Source` (one-shot sources) or `incremental(spec, settings, mapping) ->
    Incremental` (sources read since a mark; see etl.jobs.run_incremental). The mapping is given
    so that a source reads only what it asks for (LeadScraper's per-lead details). Optional:
    `job_mapping(source, given)` picks the mapping from the source itself (CSV: the export format)."""
    mapping: str
    """The built-in mapping (etl/mappings/<mapping>.toml)."""
    job_keys: frozenset[str] = frozenset()
    """Job-file keys this source adds to the common ones (etl.jobs.COMMON_JOB_KEYS); its `command`'s
    options are added to them."""
    incremental: bool = False
    summary: str = ""
    command: SourceCommand | None = None
    """Its `import` subcommand, built by etl.cli; None for a source whose command is written by hand
    (csv: shows the recognised mapping; leadgenius: a separate target account)."""

    def __post_init__(self) -> None:
        if self.command is not None:
            keys = {o.name for o in self.command.options if o.job_key}
            object.__setattr__(self, "job_keys", self.job_keys | keys)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


SOURCES: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind("csv", "etl.extract.csv", "csv", frozenset({"path", "skip_rows"}), summary="a CSV file"),
        SourceKind("hubspot", "etl.extract.hubspot", "hubspot", frozenset({"full_every", "on_archive"}),
                   incremental=True, summary="HubSpot contacts with their primary company", command=SourceCommand(
            "Import HubSpot contacts (with their primary company) into a client; incremental after the first run.",
            (
                SourceOption("full", bool, "Read every contact, ignoring the high-water mark."),
                SourceOption("since", help="Read contacts modified since this ISO 8601 time."),
                LOOKBACK,
                SourceOption("job", help="State key for the high-water mark (default hubspot:<client>).",
                             job_key=False),
                SourceOption("hubspot_base_url", help="HubSpot API root.", envvar="HUBSPOT_BASE_URL", settings=True),
            ))),
        SourceKind("leadgenius", "etl.extract.leadgenius", "leadgenius",
                   frozenset({"company_id", "source_client", "table"}), summary="another LeadGenius client or tenant"),
        SourceKind("leadscraper", "etl.extract.leadscraper", "leadscraper", incremental=True,
                   summary="LeadScraper API leads", command=SourceCommand(
            "Import LeadScraper leads (filtered on the server) into a client; incremental after the first run.\n\n"
            "Needs LEADSCRAPER_API_KEY. Reads list pages only (100 leads per request) unless the mapping asks\n"
            "for a detail-only column; the dry run says what the read costs against the hour's budget.",
            (
                SourceOption("job_id", help="Only leads of this LeadScraper scraping job."),
                SourceOption("score_min", int, "Only leads scored at least N (0-100).", min=0, max=100),
                SourceOption("score_max", int, "Only leads scored at most N (0-100).", min=0, max=100),
                SourceOption("status", help="Only hot, warm or cold leads."),
                SourceOption("since", help="Only leads created after this ISO 8601 time (overrides the mark once)."),
                SourceOption("full", bool, "Read every matching lead, ignoring the mark."),
                LOOKBACK,
                SourceOption("job", help="State key for the mark (default leadscraper:<client>).", job_key=False),
                SourceOption("leadscraper_base_url", help="LeadScraper API root, with /v1.",
                             envvar="LEADSCRAPER_BASE_URL", settings=True),
            ))),
    )
}


def source_kind(name: str, where: str = "source") -> SourceKind:
    """The registry line for `name`, or a ConfigError naming the known sources."""
    from etl.errors import ConfigError

    kind = SOURCES.get(name)
    if kind is None:
        known = ", ".join(f'"{n}"' for n in SOURCES)
        raise ConfigError(f"{where} must be one of {known}, not {name!r}")
    return kind
