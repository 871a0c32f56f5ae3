"""The orchestrator: the only module that knows the order of the stages, and does none of their work.

connect -> extract (thread) -> transform + validate -> dedupe -> plan -> load -> reconcile -> report

Each stage is a function that returns (or fills) an info object, as dlt's ExtractInfo /
LoadInfo: `TargetInfo`, `ExtractInfo`, `NormalizeInfo`, `LoadInfo`, `ReconcileInfo`. The run
report is assembled from them (`RunResult.report`); `etl.report.write_reports` is the one
writer of the report files.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import polars as pl

from etl.ahead import map_ahead
from etl.config import Settings
from etl.errors import CredentialsRejected, EtlError, TargetUnreachable, UsageError, error_line, exit_code_for
from etl.load.api import LeadGeniusApi
from etl.load.clients import resolve_client
from etl.load.loader import Loader, LoadResult
from etl.load.plan import Mode, action_counts, empty_target, plan, target_frame
from etl.log import get_logger
from etl.reconcile import ReconcileResult, read_target, reconcile
from etl.report import Progress, RejectsWriter, RunReport, decide_exit_code, write_reports
from etl.slug import looks_like_uuid, slugify
from etl.sources import Source, SourceBatch, source_requests
from etl.state import LEDGER_COLUMNS, Ledger, open_state

if TYPE_CHECKING:
    from etl.mapping import Mapping
    from etl.transform import TransformResult


@dataclass(frozen=True)
class ImportOptions:
    client: str
    mode: Mode = "insert"
    dry_run: bool = False
    report_path: Path | None = None
    rejects_path: Path | None = None
    html_path: Path | None = None
    rate: float | None = None
    concurrency: int = 8
    strict: bool = False
    job: str | None = None
    repair_rounds: int = 5
    default_region: str | None = None
    """Phone numbers without `+` are read in this region where the row names no country."""


# --- info objects ----------------------------------------------------------------------------


@dataclass
class TargetInfo:
    """What `connect` learned about the target: the client's slug and what it already holds."""

    slug: str
    frame: pl.DataFrame
    target_id: str | None  # None: a dry run that could not reach the target
    facts: dict[str, Any]  # the report's `target` block


@dataclass
class ExtractInfo:
    """Rows read, counters summed over batches, and the newest watermark seen."""

    rows: int = 0
    batches: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    watermark: datetime | None = None

    def add(self, batch: SourceBatch) -> None:
        self.rows += batch.frame.height + batch.rejects.height
        self.batches += 1
        for key, n in batch.counters.items():
            self.counters[key] = self.counters.get(key, 0) + n
        if batch.watermark is not None and (self.watermark is None or batch.watermark > self.watermark):
            self.watermark = batch.watermark


@dataclass
class NormalizeInfo:
    """Transform, validate and dedupe: valid rows, duplicates, and fill rates weighted by rows."""

    valid: int = 0
    duplicates: int = 0
    _fill_sums: dict[str, float] = field(default_factory=dict)
    _fill_rows: int = 0

    def add(self, result: TransformResult, kept: pl.DataFrame, cross_duplicates: int) -> None:
        from etl.transform import fill_rates

        self.valid += result.leads.height + result.duplicates.height
        self.duplicates += result.duplicates.height + cross_duplicates
        for name, rate in fill_rates(kept).items():  # keeps the lead-field order
            self._fill_sums[name] = self._fill_sums.get(name, 0.0) + rate * kept.height
        self._fill_rows += kept.height

    def fill_rates(self) -> dict[str, float]:
        total = self._fill_rows or 1
        return {name: s / total for name, s in self._fill_sums.items()}


@dataclass
class LoadInfo:
    """What the plan predicted and (not dry) what the loader did."""

    create: int = 0
    update: int = 0
    unchanged: int = 0
    result: LoadResult | None = None

    def add_plan(self, counts: dict[str, int]) -> None:
        self.create += counts["create"]
        self.update += counts["update"]
        self.unchanged += counts["unchanged"]


@dataclass
class ReconcileInfo:
    """Reconcile's result and how long it waited first."""

    result: ReconcileResult
    settled_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"settled_s": self.settled_s, **self.result.to_dict()}


@dataclass
class RunResult:
    """A finished run: its report, and what the HTML report needs besides."""

    report: RunReport
    extract: ExtractInfo
    fill_rates: dict[str, float]
    rejects_sample: pl.DataFrame
    mapping: dict[str, Any]


# --- the stages ------------------------------------------------------------------------------


def settle_before_reconcile(resent_after_doubt: int, timeout_s: float) -> float:
    """Seconds to wait before reconcile reads the target (pure).

    A create whose answer was lost, then not found, is sent again; if the first request was
    only slow, it may still land after reconcile has read the target, and its copy would stay
    (quirk 7: the API does not dedupe). Waiting one request timeout lets it land first, where
    reconcile removes it. Only runs that re-sent pay the wait.
    """
    return timeout_s if resent_after_doubt else 0.0


def _target_id(api: LeadGeniusApi) -> str:
    return f"{api.base_url}#{api.keeper.user_id or 'unknown'}"


async def connect(api: LeadGeniusApi, options: ImportOptions) -> TargetInfo:
    """Resolve the client and read the target once. A dry run survives an unreachable target."""
    try:
        client = await resolve_client(api, options.client, create=not options.dry_run)
        slug = client["client_id"] if client else slugify(options.client)
        company_id = None
        if api.settings.api_key:
            company_id = (await api.company()).get("company_id")
        snapshot = await read_target(api, slug, company_id=company_id) if client else None
        facts = {
            "base_url": api.base_url,
            "reachable": True,
            "client_exists": client is not None,
            "leads_before": snapshot.leads if snapshot else 0,
            **({"company_id": company_id} if company_id else {}),
        }
        frame = target_frame(snapshot.frame) if snapshot else empty_target()
        return TargetInfo(slug, frame, _target_id(api), facts)
    except (TargetUnreachable, CredentialsRejected) as exc:
        if not options.dry_run:
            raise
        if looks_like_uuid(options.client):
            raise EtlError(f"cannot translate the client UUID {options.client} to a slug: {exc}") from None
        facts = {"base_url": api.base_url, "reachable": False, "reason": str(exc)}
        return TargetInfo(slugify(options.client), empty_target(), None, facts)


def transform_stage(
    batch: SourceBatch, mapping: Mapping, slug: str, default_region: str | None = None
) -> TransformResult:
    """Transform and validate one batch (pure; runs on a worker thread).

    Validated before any of the batch is loaded: the payload check of its leads (a superset of
    what dedupe keeps) costs about a third of the transform, and on the consuming thread it held
    back the next batches (~0.5 s of a 1M-row dry run)."""
    from etl.schemas import validate_leads
    from etl.transform import transform

    result = transform(batch.frame, mapping, slug, default_region=default_region)
    validate_leads(result.leads)
    return result


async def _transformed(
    source: Source, transform_batch: Callable[[SourceBatch], TransformResult]
) -> AsyncIterator[tuple[SourceBatch, TransformResult]]:
    """Each batch with its transform, in order. The transform runs off the event loop (a
    100k-row transform would stall every request in flight); a sync source's next batches are
    transformed ahead on worker threads while this one is loaded."""
    if hasattr(source, "abatches"):
        async for batch in source.abatches():
            yield batch, await anyio.to_thread.run_sync(transform_batch, batch)
        return
    stream = map_ahead(source.batches(), transform_batch, name="transform")
    try:
        while (pair := await anyio.to_thread.run_sync(next, stream, None)) is not None:
            yield pair
    finally:
        await anyio.to_thread.run_sync(stream.close)


def adopt_existing(ledger: Ledger, target_id: str, slug: str, run_id: str, planned: pl.DataFrame) -> None:
    """Remember leads the target already holds; keep their hash only when they match our payload."""
    existing = planned.filter(pl.col("_action") == "unchanged")
    if existing.height == 0:
        return
    rows = existing.select(
        "_key", "_tid", pl.when(pl.col("_changed").list.len() == 0).then(pl.col("_hash")).otherwise(None)
    ).rows()
    ledger.adopt(target_id, slug, rows, run_id)


async def reconcile_stage(
    api: LeadGeniusApi, ledger: Ledger, target: TargetInfo, loaded: LoadResult, keys: set[str],
    *, settings: Settings, repair_rounds: int,
) -> ReconcileInfo:
    """Wait out a possibly slow re-sent create, then re-read the target and repair."""
    settle_s = settle_before_reconcile(loaded.resent_after_doubt, settings.timeout_s)
    if settle_s:
        get_logger(stage="reconcile").info(
            "settling before reconcile", resent_after_doubt=loaded.resent_after_doubt, seconds=settle_s
        )
        await anyio.sleep(settle_s)
    assert target.target_id is not None
    result = await reconcile(
        api, ledger, target=target.target_id, client_id=target.slug, keys=keys,
        repair=True, max_rounds=repair_rounds, company_id=target.facts.get("company_id"),
    )
    return ReconcileInfo(result, settle_s)


def assemble_report(
    report: RunReport, extract: ExtractInfo, normalize: NormalizeInfo, load: LoadInfo,
    reconciled: ReconcileInfo | None,
) -> None:
    """Fill the report's counts and blocks from the stages' info objects (pure)."""
    c = report.counts
    c.extracted = extract.rows
    c.valid, c.duplicates, c.unchanged = normalize.valid, normalize.duplicates, load.unchanged
    report.source_info.update(extract.counters)
    if load.result is None:  # dry run: the prediction
        c.created, c.updated = load.create, load.update
    else:
        late = set(reconciled.result.landed_late) if reconciled is not None else set()
        c.created, c.failed, failures = load.result.without_late(late)
        c.updated = load.result.updated
        report.failures = failures[:1000]
    if reconciled is not None:
        c.confirmed, c.missing = reconciled.result.confirmed, reconciled.result.missing
        report.reconcile = reconciled.to_dict()


# --- the run ---------------------------------------------------------------------------------


async def execute_import(
    settings: Settings,
    source: Source,
    mapping: Mapping,
    options: ImportOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
    on_batch: Callable[[SourceBatch], None] | None = None,
    settle: Callable[[RunReport, ExtractInfo], Awaitable[None]] | None = None,
) -> RunResult:
    """Run one import end to end; write nothing but the target, the ledger and the rejects file.

    `settle`: what the run still does once the load is verified (an incremental job's deletes and
    marks); it runs before the runs row ends, and the exit code is decided again after it."""
    check_writable(options.report_path, options.rejects_path, options.html_path)
    started = time.perf_counter()
    notify = progress or (lambda _e, _n: None)
    log = get_logger(stage="pipeline", source=source.name)
    report = RunReport(dry_run=options.dry_run, client_id=None, mode=options.mode, source=source.name)
    report.mapping = mapping.report_dict()
    ledger = open_state(settings)
    report.run_id = ledger.start_run(
        command="import", source=source.name, target=settings.base_url, client_id=None,
        mode=options.mode, dry_run=options.dry_run, job=options.job,
    )
    rejects = RejectsWriter(options.rejects_path)
    extracted, normalized, load = ExtractInfo(), NormalizeInfo(), LoadInfo()
    reconciled: ReconcileInfo | None = None
    run_keys: set[str] = set()  # what reconcile checks
    api: LeadGeniusApi | None = None
    loader: Loader | None = None
    stopped = False
    try:
        async with LeadGeniusApi(
            settings, transport=transport, concurrency=options.concurrency, rate_per_min=options.rate
        ) as api:
            api.on_throttled = lambda: notify("429s", 1)
            target = await connect(api, options)
            report.client_id, report.target = target.slug, target.facts
            ledger_df = ledger.index(target.target_id, target.slug) if target.target_id else pl.DataFrame(
                schema=LEDGER_COLUMNS
            )
            loader = Loader(
                api, ledger, target=target.target_id or "", client_id=target.slug, run_id=report.run_id,
                concurrency=options.concurrency, progress=notify,
            )
            from etl.transform import Deduper

            deduper = Deduper()

            def transform_batch(batch: SourceBatch) -> TransformResult:
                return transform_stage(batch, mapping, target.slug, options.default_region)

            async for batch, result in _transformed(source, transform_batch):
                if on_batch:
                    on_batch(batch)
                extracted.add(batch)
                notify("extracted", batch.frame.height + batch.rejects.height)
                for frame in (batch.rejects, result.rejects):
                    report.add_rejects(frame)
                    rejects.write(frame)
                kept, cross_dups = deduper(result.leads)
                normalized.add(result, kept, cross_dups.height)
                planned = plan(kept, target.frame, ledger_df, options.mode)
                counts = action_counts(planned)
                load.add_plan(counts)
                if options.dry_run or target.target_id is None:
                    continue
                run_keys.update(kept.get_column("_key").to_list())
                notify("planned", counts["create"] + counts["update"])
                adopt_existing(ledger, target.target_id, target.slug, report.run_id, planned)
                await loader.load(planned)
                log.info("batch loaded", rows=batch.frame.height, **counts, failed=loader.result.failed)
            if not options.dry_run and target.target_id is not None:
                load.result = loader.result
                reconciled = await reconcile_stage(
                    api, ledger, target, loader.result, run_keys, settings=settings,
                    repair_rounds=options.repair_rounds,
                )
            _request_stats(report, api)
        assemble_report(report, extracted, normalized, load, reconciled)
        report.exit_code = decide_exit_code(report, strict=options.strict)
        if settle is not None:
            await settle(report, extracted)
            report.exit_code = decide_exit_code(report, strict=options.strict)
    except BaseException as exc:
        # Whatever stopped the run (a refused token, Ctrl-C, a Rust panic inside polars, which is a
        # BaseException): the runs row, the ledger and the report keep what was done, so a rerun
        # is as safe as after kill -9. The caller reports the error itself.
        stopped = True
        assemble_report(report, extracted, normalized, load, reconciled)
        _stopped(report, exc, loader, api)
        raise
    finally:
        rejects.close()
        report.duration_s = round(time.perf_counter() - started, 3)
        report.source_requests = source_requests(source)
        run = RunResult(report, extracted, normalized.fill_rates(), rejects.sample(), report.mapping)
        try:
            ledger.finish_run(report.run_id, exit_code=report.exit_code or 0, counts=report.to_dict()["counts"],
                              client_id=report.client_id)
        finally:
            ledger.close()
            if stopped:  # the caller never gets a result to write: the report of what was done, here
                write_reports(run, report_path=options.report_path, html_path=None)
    return run


async def run_import(
    settings: Settings,
    source: Source,
    mapping: Mapping,
    options: ImportOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
    on_batch: Callable[[SourceBatch], None] | None = None,
) -> RunReport:
    """Run one import end to end, write its reports (options.report_path / html_path), return the report."""
    result = await execute_import(
        settings, source, mapping, options, transport=transport, progress=progress, on_batch=on_batch
    )
    write_reports(result, report_path=options.report_path, html_path=options.html_path)
    return result.report


def _request_stats(report: RunReport, api: LeadGeniusApi) -> None:
    report.requests = api.stats.to_dict()
    if api.limiters["bearer"].throttled:
        report.requests["throttled_429"] = api.limiters["bearer"].throttled


def _stopped(report: RunReport, exc: BaseException, loader: Loader | None, api: LeadGeniusApi | None) -> None:
    """Fill the report of a run that `exc` stopped with what was done up to then."""
    report.exit_code = exit_code_for(exc)
    report.error = error_line(exc)
    if loader is not None and not report.dry_run:
        done = loader.result
        report.counts.created, report.counts.updated, report.counts.failed = done.created, done.updated, done.failed
        report.failures = done.failures[:1000]
    if api is not None:
        _request_stats(report, api)


def check_writable(*paths: Path | None) -> None:
    """Fail before any work when an output file cannot be written (not after an import has run)."""
    for path in paths:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        if path.is_dir() or not os.access(path.parent, os.W_OK):
            raise UsageError(f"cannot write {path}: {'it is a directory' if path.is_dir() else 'permission denied'}")
