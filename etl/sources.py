"""What a source is, and which sources exist.

A source yields `SourceBatch`es: a polars frame of source rows, the rows it could not read, a
few counters, and (incremental sources) a typed `watermark`. Sync sources run in a worker
thread; async ones (HTTP APIs read with httpx) run on the event loop.

`SOURCES` is the registry that the CLI, `JobSpec` and `run_job` read. Adding a source means:
one module under `etl/extract/` (the reader, its `Source` class, and `job_source` or
`incremental` for job files), one `mappings/<name>.toml`, one sandbox under `etl/sandbox/<name>/`,
its tests, and one line below.
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
    """Job-file keys this source adds to the common ones (etl.jobs.COMMON_JOB_KEYS)."""
    incremental: bool = False
    summary: str = ""

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


SOURCES: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind("csv", "etl.extract.csv", "csv", frozenset({"path", "skip_rows"}), summary="a CSV file"),
        SourceKind("hubspot", "etl.extract.hubspot", "hubspot", frozenset({"full", "since", "lookback",
                   "hubspot_base_url", "full_every", "on_archive"}), incremental=True,
                   summary="HubSpot contacts with their primary company"),
        SourceKind("leadgenius", "etl.extract.leadgenius", "leadgenius",
                   frozenset({"company_id", "source_client", "table"}), summary="another LeadGenius client or tenant"),
        SourceKind("leadscraper", "etl.extract.leadscraper", "leadscraper",
                   frozenset({"full", "since", "lookback", "job_id", "score_min", "score_max", "status",
                              "leadscraper_base_url"}), incremental=True, summary="LeadScraper API leads"),
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
