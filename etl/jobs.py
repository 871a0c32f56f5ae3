"""Scheduled jobs: a TOML job file, one lock per job, and the incremental mark.

Public API for orchestrators (cron, systemd, Dagster, Prefect, Airflow):

    from etl.jobs import JobSpec, run_job
    report = run_job(JobSpec.load("jobs/hubspot-acme.toml"))   # RunReport; report.exit_code

`import hubspot` and `import leadscraper` are jobs too (a JobSpec built from the command line),
so a scheduled run and a manual one share one incremental routine, `run_incremental`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from etl.config import Settings, read_toml
from etl.errors import ConfigError, UsageError
from etl.load.plan import Mode
from etl.pipeline import ExtractInfo, ImportOptions, check_writable, execute_import, run_import
from etl.report import Progress, RunReport, write_reports
from etl.slug import slugify
from etl.sources import Incremental, source_kind
from etl.state import open_state

COMMON_JOB_KEYS = frozenset({
    "name", "source", "client", "mode", "mapping", "rate", "concurrency", "report", "rejects", "report_html",
    "strict", "base_url", "dry_run", "default_region",
})
"""Keys every job file may use; each source adds its own (etl.sources.SourceKind.job_keys)."""


@dataclass(frozen=True)
class JobSpec:
    """What a job file says. Relative paths are relative to the job file.

    `params` holds the source's own keys that have no field here (e.g. LeadScraper's `job_id`,
    `score_min`, `status`); the source's module reads them.
    """

    name: str
    source: str
    client: str
    mode: Mode = "insert"
    path: Path | None = None
    mapping: Path | None = None
    rate: float | None = None
    concurrency: int = 8
    report: Path | None = None
    rejects: Path | None = None
    report_html: Path | None = None
    strict: bool = False
    full: bool = False
    since: str | None = None
    lookback: str | None = None
    base_url: str | None = None
    hubspot_base_url: str | None = None
    dry_run: bool = False
    full_every: str | None = None  # HubSpot: a scheduled run is a full one when the last was this long ago
    on_archive: Literal["keep", "delete"] = "keep"  # HubSpot: what archived and merged-away contacts do
    default_region: str | None = None  # phones without + are read in this region (etl.transform.values)
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> JobSpec:
        path = Path(path)
        raw = read_toml(path, "job file")
        body = raw.get("job", raw)
        if not isinstance(body, dict):
            raise ConfigError(f"job file {path}: [job] must be a table")
        for key in ("source", "client"):
            if not body.get(key):
                raise ConfigError(f"job file {path}: `{key}` is required")
        kind = source_kind(str(body["source"]), where=f"job file {path}: source")
        allowed = COMMON_JOB_KEYS | kind.job_keys
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ConfigError(
                f"job file {path}: unknown key(s) {', '.join(unknown)} for a {kind.name} job; "
                f"known: {', '.join(sorted(allowed))}"
            )
        if body.get("mode", "insert") not in ("insert", "upsert"):
            raise ConfigError(f"job file {path}: mode must be insert or upsert")
        if kind.name == "csv" and not body.get("path"):
            raise ConfigError(f"job file {path}: a csv job needs `path`")
        if body.get("on_archive", "keep") not in ("keep", "delete"):
            raise ConfigError(f"job file {path}: on_archive must be \"keep\" or \"delete\", not {body['on_archive']!r}")
        for key in ("lookback", "full_every", "since"):
            if body.get(key) is not None:
                try:
                    (parse_since if key == "since" else parse_duration)(str(body[key]))
                except UsageError as exc:
                    raise ConfigError(f"job file {path}: {key}: {exc}") from None

        def rel(value: Any) -> Path | None:
            return None if not value else (path.parent / str(value)).resolve()

        fields = {"path", "full", "since", "lookback", "hubspot_base_url", "full_every", "on_archive"}
        try:
            spec = cls(
                name=str(body.get("name") or path.stem),
                source=kind.name,
                client=str(body["client"]),
                mode=body.get("mode", "insert"),
                path=rel(body.get("path")),
                mapping=rel(body.get("mapping")),
                rate=float(body["rate"]) if body.get("rate") else None,
                concurrency=int(body.get("concurrency", 8)),
                report=rel(body.get("report")),
                rejects=rel(body.get("rejects")),
                report_html=rel(body.get("report_html")),
                strict=bool(body.get("strict", False)),
                full=bool(body.get("full", False)),
                since=str(body["since"]) if body.get("since") else None,
                lookback=str(body["lookback"]) if body.get("lookback") is not None else None,
                base_url=body.get("base_url"),
                hubspot_base_url=body.get("hubspot_base_url"),
                dry_run=bool(body.get("dry_run", False)),
                full_every=str(body["full_every"]) if body.get("full_every") else None,
                on_archive=body.get("on_archive", "keep"),
                default_region=_region(body.get("default_region"), path),
                params={k: v for k, v in body.items() if k in kind.job_keys and k not in fields},
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"job file {path}: {exc}") from None
        return spec

    def since_time(self) -> datetime | None:
        return parse_since(self.since) if self.since else None

    def lookback_delta(self, default: timedelta = timedelta(0)) -> timedelta:
        return parse_duration(self.lookback) if self.lookback is not None else default

    def import_options(self) -> ImportOptions:
        return ImportOptions(
            client=self.client, mode=self.mode, dry_run=self.dry_run, report_path=self.report,
            rejects_path=self.rejects, html_path=self.report_html, rate=self.rate, concurrency=self.concurrency,
            strict=self.strict, job=self.name, default_region=self.default_region,
        )


def _region(value: Any, path: Path) -> str | None:
    """The job file's `default_region` as a region code; `ConfigError` naming the file otherwise."""
    from etl.transform.values import region_option

    if value is None:
        return None
    try:
        return region_option(str(value))
    except UsageError as exc:
        raise ConfigError(f"job file {path}: default_region: {exc}") from None


def parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {value!r} is not an ISO 8601 timestamp (e.g. 2026-11-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> timedelta:
    """`90s`, `10m`, `2h`, `1d` (a bare number is seconds), or ISO 8601 `PT10M`."""
    text = value.strip()
    iso = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text, re.IGNORECASE)
    if iso and any(iso.groups()):
        d, h, m, s = (float(g) if g else 0.0 for g in iso.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{value!r} is not a duration (e.g. 90s, 10m, 2h, 7d or PT10M)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()])


def default_job_name(source: str, client: str) -> str:
    """The state key of a source's mark for a client when no --job is given: `hubspot:acme-corp`."""
    return f"{source}:{slugify(client) or client}"


def next_mark(
    stored: datetime | None, candidate: datetime | None, run_start: datetime | None, *, confirmed: bool
) -> datetime | None:
    """The mark to store after a run, or None to keep the stored one (pure).

    Only a run whose every lead is confirmed moves it; it never moves backwards (a lookback
    re-read sees older changes); with `run_start`, never past it (a source clock ahead of ours
    must not make the next run skip what is written between now and that time).
    """
    if not confirmed or candidate is None:
        return None
    if run_start is not None:
        candidate = min(candidate, run_start)
    if stored is not None and candidate <= stored:
        return None
    return candidate


async def run_incremental(
    settings: Settings,
    options: ImportOptions,
    adapter: Incremental,
    *,
    job: str,
    mapping: Any,
    full: bool = False,
    since: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """One incremental run, for every source that is read since a mark.

    The mark is read once, at the start; the adapter says what to read (`begin`: changes since
    the mark less its lookback, or everything, and why); the import runs; the adapter acts on
    what the import cannot (`settle`); then the mark moves — only when every lead is confirmed
    (exit 0, not a dry run), only forward, never past the run's start (`next_mark`)."""
    check_writable(options.report_path, options.rejects_path, options.html_path)
    run_start = datetime.now(UTC)
    with open_state(settings) as state:
        stored_text = state.get_mark(job, adapter.mark)
        stored = parse_since(stored_text) if stored_text else None
        start, full_reason = adapter.begin(state, job, stored=stored, since=since, full=full, now=run_start)
    source = adapter.source(start)

    async def settle(report: RunReport, extracted: ExtractInfo) -> None:
        """The rest of the run, before its runs row ends: what the import cannot do, then the mark."""
        info = report.source_info
        info.update({
            "job": job, "mark_before": stored.isoformat() if stored else None,
            "read": "full" if start is None else f"changed since {start.isoformat()}",
            "full_reason": full_reason, "lookback_s": adapter.lookback.total_seconds(),
        })
        info.update(adapter.describe())
        confirmed = not options.dry_run and report.exit_code == 0
        confirmed = await adapter.settle(settings, report, confirmed=confirmed, transport=transport)
        candidate = adapter.next_mark(extracted.watermark, run_start)
        new = next_mark(stored, candidate, run_start=None, confirmed=confirmed)
        with open_state(settings) as state:
            if new is not None:
                state.set_mark(job, adapter.mark, new.isoformat(), run_id=report.run_id)  # undo moves it back
            adapter.commit(state, job, confirmed=confirmed, mark=new or stored, now=run_start, run_id=report.run_id)
        after = new or stored
        info["mark_after"] = after.isoformat() if after else None

    result = await execute_import(
        settings, source, mapping, replace(options, job=job), transport=transport, progress=progress, settle=settle
    )
    report = result.report
    write_reports(result, report_path=options.report_path, html_path=options.html_path)
    return report


async def run_spec(
    spec: JobSpec,
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Run a job once, without its lock (the caller holds it): the registry says how."""
    from etl.mapping import Mapping

    kind = source_kind(spec.source)
    module = kind.load()
    given = Mapping.load(spec.mapping) if spec.mapping else None
    mapping = given or Mapping.builtin(kind.mapping)
    options = spec.import_options()
    if kind.incremental:
        adapter: Incremental = module.incremental(spec, settings, mapping)
        return await run_incremental(
            settings, options, adapter, job=spec.name, mapping=mapping, full=spec.full, since=spec.since_time(),
            transport=transport, progress=progress,
        )
    source = module.job_source(spec, settings, mapping)
    if hasattr(module, "job_mapping"):  # e.g. CSV: the export format is recognised from the file's headers
        mapping = module.job_mapping(source, given)
    return await run_import(settings, source, mapping, options, transport=transport, progress=progress)


def run_job(spec: JobSpec, settings: Settings | None = None, *, progress: Progress | None = None) -> RunReport:
    """Run a job once, holding its lock (a second overlapping run raises JobLocked at once)."""
    settings = settings or Settings.from_env(base_url=spec.base_url, hubspot_base_url=spec.hubspot_base_url)
    with open_state(settings) as state, state.job_lock(spec.name):
        return anyio.run(lambda: run_spec(spec, settings, progress=progress))
