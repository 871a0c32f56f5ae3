"""The orchestrator: the only module that knows the order of the stages.

extract (thread) -> transform -> dedupe -> validate -> plan -> load -> reconcile -> report
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import httpx
import polars as pl

from etl.ahead import map_ahead
from etl.config import Settings
from etl.errors import CredentialsRejected, EtlError, TargetUnreachable, UsageError, error_line, exit_code_for
from etl.load.api import LeadGeniusApi
from etl.load.clients import resolve_client
from etl.load.loader import Loader
from etl.load.plan import action_counts, empty_target, plan, target_frame
from etl.log import get_logger
from etl.reconcile import read_target, reconcile
from etl.report import RejectsWriter, RunReport, decide_exit_code, write_json_atomic
from etl.slug import looks_like_uuid, slugify
from etl.state import LEDGER_COLUMNS, Ledger, open_state

if TYPE_CHECKING:
    from etl.transform import TransformResult

Mode = Literal["insert", "upsert"]


@dataclass(frozen=True)
class SourceBatch:
    frame: pl.DataFrame  # "_row" + source columns (String)
    rejects: pl.DataFrame  # rows the extractor could not read: "_row", "_reason", "_rule" + columns
    info: dict[str, Any] = field(default_factory=dict)


class SyncSource(Protocol):
    """A synchronous extractor; the pipeline runs it in a worker thread."""

    name: str

    def batches(self) -> Iterator[SourceBatch]: ...


class AsyncSource(Protocol):
    """An extractor that is itself async (e.g. the LeadGenius bulk list)."""

    name: str

    def abatches(self) -> AsyncIterator[SourceBatch]: ...


Source = SyncSource | AsyncSource


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


def settle_before_reconcile(resent_after_doubt: int, timeout_s: float) -> float:
    """Seconds to wait before reconcile reads the target (pure).

    A create whose answer was lost, then not found, is sent again; if the first request was
    only slow, it may still land after reconcile has read the target, and its copy would stay
    (quirk 7: the API does not dedupe). Waiting one request timeout lets it land first, where
    reconcile removes it. Only runs that re-sent pay the wait.
    """
    return timeout_s if resent_after_doubt else 0.0


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


Progress = Callable[[str, int], None]  # (event, n): "extracted", "created", "updated", "failed", …


def _target_id(api: LeadGeniusApi) -> str:
    return f"{api.base_url}#{api.keeper.user_id or 'unknown'}"


async def run_import(
    settings: Settings,
    source: Source,
    mapping: Any,
    options: ImportOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
    on_batch: Callable[[SourceBatch], None] | None = None,
) -> RunReport:
    """Run one import end to end and return its report (also written to options.report_path)."""
    from etl.schemas import validate_leads
    from etl.transform import Deduper, fill_rates, transform

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
    fills: list[dict[str, float]] = []
    fill_weights: list[int] = []
    run_keys: set[str] = set()
    api: LeadGeniusApi | None = None
    loader: Loader | None = None
    try:
        async with LeadGeniusApi(
            settings, transport=transport, concurrency=options.concurrency, rate_per_min=options.rate
        ) as api:
            api.on_throttled = lambda: notify("429s", 1)
            slug, target_df, target_id = await _connect(api, options, report)
            ledger_df = ledger.index(target_id, slug) if target_id else pl.DataFrame(schema=LEDGER_COLUMNS)
            loader = Loader(
                api, ledger, target=target_id or "", client_id=slug, run_id=report.run_id,
                concurrency=options.concurrency, progress=lambda kind: notify(kind, 1),
            )
            deduper = Deduper()
            c = report.counts

            def transform_batch(batch: SourceBatch) -> TransformResult:
                # Validated on the worker thread, before any of the batch is loaded: the payload
                # check of its leads (a superset of what dedupe keeps) costs about a third of
                # the transform, and on the consuming thread it held back the next batches
                # (~0.5 s of a 1M-row dry run).
                result = transform(batch.frame, mapping, slug, default_region=options.default_region)
                validate_leads(result.leads)
                return result

            async for batch, result in _transformed(source, transform_batch):
                if on_batch:
                    on_batch(batch)
                c.extracted += batch.frame.height + batch.rejects.height
                notify("extracted", batch.frame.height + batch.rejects.height)
                report.add_rejects(batch.rejects)
                rejects.write(batch.rejects)
                for key, value in batch.info.items():
                    _accumulate(report.source_info, key, value)
                report.add_rejects(result.rejects)
                rejects.write(result.rejects)
                kept, cross_dups = deduper(result.leads)
                c.duplicates += result.duplicates.height + cross_dups.height
                c.valid += result.leads.height + result.duplicates.height
                fills.append(fill_rates(kept))
                fill_weights.append(kept.height)
                planned = plan(kept, target_df, ledger_df, options.mode)
                counts = action_counts(planned)
                c.unchanged += counts["unchanged"]
                if options.dry_run:
                    c.created += counts["create"]
                    c.updated += counts["update"]
                    continue
                run_keys.update(kept.get_column("_key").to_list())  # what reconcile checks
                assert target_id is not None
                notify("planned", counts["create"] + counts["update"])
                _adopt_existing(ledger, target_id, slug, report.run_id, planned)
                await loader.load(planned)
                log.info("batch loaded", rows=batch.frame.height, **counts, failed=loader.result.failed)
            if not options.dry_run and target_id is not None:
                c.created, c.updated, c.failed = loader.result.created, loader.result.updated, loader.result.failed
                report.failures = loader.result.failures[:1000]
                settle_s = settle_before_reconcile(loader.result.resent_after_doubt, settings.timeout_s)
                if settle_s:
                    log.info("settling before reconcile", resent_after_doubt=loader.result.resent_after_doubt,
                             seconds=settle_s)
                    await anyio.sleep(settle_s)
                rec = await reconcile(
                    api, ledger, target=target_id, client_id=slug, keys=run_keys,
                    repair=True, max_rounds=options.repair_rounds, company_id=report.target.get("company_id"),
                )
                c.confirmed, c.missing = rec.confirmed, rec.missing
                report.reconcile = {
                    "settled_s": settle_s,
                    "rounds": rec.rounds, "repaired": rec.repaired, "duplicates_removed": rec.duplicates_removed,
                    "visible_by_slug": rec.visible, "missing_sample": rec.missing_keys[:50],
                    "target_leads_after": rec.snapshot.leads if rec.snapshot else None,
                }
            _request_stats(report, api)
        report.exit_code = decide_exit_code(report, strict=options.strict)
    except BaseException as exc:
        # Whatever stopped the run (a refused token, Ctrl-C, a Rust panic inside polars, which is a
        # BaseException): the runs row, the ledger and the report keep what was done, so a rerun
        # is as safe as after kill -9. The caller reports the error itself.
        _stopped(report, exc, loader, api)
        raise
    finally:
        rejects.close()
        report.duration_s = round(time.perf_counter() - started, 3)
        try:
            ledger.finish_run(report.run_id, exit_code=report.exit_code or 0, counts=report.to_dict()["counts"],
                              client_id=report.client_id)
        finally:
            ledger.close()
            if options.report_path:
                write_json_atomic(options.report_path, report.to_dict())
    if options.html_path:
        from etl.report_html import render_html

        total = sum(fill_weights) or 1
        fields = list(dict.fromkeys(k for f in fills for k in f))  # keep the lead-field order
        merged = {k: sum(f.get(k, 0.0) * w for f, w in zip(fills, fill_weights, strict=True)) / total for k in fields}
        options.html_path.parent.mkdir(parents=True, exist_ok=True)
        options.html_path.write_text(
            render_html(report.to_dict(), rejects.sample(), merged, report.mapping), encoding="utf-8"
        )
    return report


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


def _accumulate(into: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        into[key] = into.get(key, 0) + value
    elif isinstance(value, str) and key.startswith("max_"):
        into[key] = max(into.get(key) or value, value)
    else:
        into[key] = value


async def _connect(
    api: LeadGeniusApi, options: ImportOptions, report: RunReport
) -> tuple[str, pl.DataFrame, str | None]:
    """Resolve the client and read the target once. A dry run survives an unreachable target."""
    try:
        client = await resolve_client(api, options.client, create=not options.dry_run)
        slug = client["client_id"] if client else slugify(options.client)
        report.client_id = slug
        company_id = None
        if api.settings.api_key:
            company_id = (await api.company()).get("company_id")
        snapshot = await read_target(api, slug, company_id=company_id) if client else None
        report.target = {
            "base_url": api.base_url,
            "reachable": True,
            "client_exists": client is not None,
            "leads_before": snapshot.leads if snapshot else 0,
            **({"company_id": company_id} if company_id else {}),
        }
        frame = target_frame(snapshot.frame) if snapshot else empty_target()
        return slug, frame, _target_id(api)
    except (TargetUnreachable, CredentialsRejected) as exc:
        if not options.dry_run:
            raise
        if looks_like_uuid(options.client):
            raise EtlError(f"cannot translate the client UUID {options.client} to a slug: {exc}") from None
        slug = slugify(options.client)
        report.client_id = slug
        report.target = {"base_url": api.base_url, "reachable": False, "reason": str(exc)}
        return slug, empty_target(), None


def _adopt_existing(ledger: Ledger, target_id: str, slug: str, run_id: str, planned: pl.DataFrame) -> None:
    """Remember leads the target already holds; keep their hash only when they match our payload."""
    existing = planned.filter(pl.col("_action") == "unchanged")
    if existing.height == 0:
        return
    rows = existing.select(
        "_key", "_tid", pl.when(pl.col("_changed").list.len() == 0).then(pl.col("_hash")).otherwise(None)
    ).rows()
    ledger.adopt(target_id, slug, rows, run_id)
