"""Scheduled jobs: a TOML job file, one lock per job, and the HubSpot high-water mark.

Public API for orchestrators (cron, systemd, Dagster, Prefect, Airflow):

    from etl.jobs import JobSpec, run_job
    report = run_job(JobSpec.load("jobs/hubspot-acme.toml"))   # RunReport; report.exit_code
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from etl.config import Settings, check_url, read_toml
from etl.errors import ConfigError, UsageError
from etl.pipeline import ImportOptions, Progress, check_writable, run_import
from etl.report import RunReport
from etl.slug import slugify
from etl.state import open_state

MARK = "hubspot.lastmodifieddate"
JOB_KEYS = {
    "name", "source", "path", "client", "mode", "mapping", "rate", "concurrency", "report", "rejects",
    "strict", "full", "since", "base_url", "hubspot_base_url", "dry_run", "lookback", "full_every", "on_archive",
    "default_region",
}


@dataclass(frozen=True)
class JobSpec:
    """What a job file says. Relative paths are relative to the job file."""

    name: str
    source: Literal["csv", "hubspot"]
    client: str
    mode: Literal["insert", "upsert"] = "insert"
    path: Path | None = None
    mapping: Path | None = None
    rate: float | None = None
    concurrency: int = 8
    report: Path | None = None
    rejects: Path | None = None
    strict: bool = False
    full: bool = False
    since: str | None = None
    base_url: str | None = None
    hubspot_base_url: str | None = None
    dry_run: bool = False
    lookback: str | None = None  # HubSpot: re-read this much before the mark (default 10 minutes)
    full_every: str | None = None  # HubSpot: a scheduled run is a full one when the last was this long ago
    on_archive: Literal["keep", "delete"] = "keep"  # HubSpot: what archived and merged-away contacts do
    default_region: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> JobSpec:
        path = Path(path)
        raw = read_toml(path, "job file")
        body = raw.get("job", raw)
        if not isinstance(body, dict):
            raise ConfigError(f"job file {path}: [job] must be a table")
        unknown = sorted(set(body) - JOB_KEYS)
        if unknown:
            known = ", ".join(sorted(JOB_KEYS))
            raise ConfigError(f"job file {path}: unknown key(s) {', '.join(unknown)}; known: {known}")
        for key in ("source", "client"):
            if not body.get(key):
                raise ConfigError(f"job file {path}: `{key}` is required")
        if body["source"] not in ("csv", "hubspot"):
            raise ConfigError(f"job file {path}: source must be \"csv\" or \"hubspot\", not {body['source']!r}")
        if body.get("mode", "insert") not in ("insert", "upsert"):
            raise ConfigError(f"job file {path}: mode must be insert or upsert")
        if body["source"] == "csv" and not body.get("path"):
            raise ConfigError(f"job file {path}: a csv job needs `path`")
        if body.get("on_archive", "keep") not in ("keep", "delete"):
            raise ConfigError(f"job file {path}: on_archive must be \"keep\" or \"delete\", not {body['on_archive']!r}")
        for key in ("lookback", "full_every"):
            if body.get(key) is not None:
                try:
                    parse_duration(str(body[key]))
                except UsageError as exc:
                    raise ConfigError(f"job file {path}: {key}: {exc}") from None

        def rel(value: Any) -> Path | None:
            return None if not value else (path.parent / str(value)).resolve()

        try:
            return cls(
                name=str(body.get("name") or path.stem),
                source=body["source"],
                client=str(body["client"]),
                mode=body.get("mode", "insert"),
                path=rel(body.get("path")),
                mapping=rel(body.get("mapping")),
                rate=float(body["rate"]) if body.get("rate") else None,
                concurrency=int(body.get("concurrency", 8)),
                report=rel(body.get("report")),
                rejects=rel(body.get("rejects")),
                strict=bool(body.get("strict", False)),
                full=bool(body.get("full", False)),
                since=str(body["since"]) if body.get("since") else None,
                base_url=body.get("base_url"),
                hubspot_base_url=body.get("hubspot_base_url"),
                dry_run=bool(body.get("dry_run", False)),
                lookback=str(body["lookback"]) if body.get("lookback") is not None else None,
                full_every=str(body["full_every"]) if body.get("full_every") else None,
                on_archive=body.get("on_archive", "keep"),
                default_region=_region(body.get("default_region"), path),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"job file {path}: {exc}") from None


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
    """`90s`, `10m`, `2h`, `7d` (a bare number is seconds), or ISO 8601 `PT10M`."""
    text = value.strip()
    iso = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text, re.IGNORECASE)
    if iso and any(iso.groups()):
        d, h, m, s = (float(g) if g else 0.0 for g in iso.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{value!r} is not a duration (e.g. 90s, 10m, 2h, 7d or PT10M)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()])


def hubspot_job_name(client: str) -> str:
    return f"hubspot:{slugify(client) or client}"


async def import_hubspot(
    settings: Settings,
    options: ImportOptions,
    *,
    job: str,
    full: bool = False,
    since: datetime | None = None,
    mapping: Any = None,
    lookback: timedelta | None = None,
    full_every: timedelta | None = None,
    on_archive: Literal["keep", "delete"] = "keep",
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """HubSpot -> LeadGenius. Reads only what changed since the job's mark (less the lookback) unless
    `full`/`since`/`full_every` says otherwise; see etl.hubspot_sync.sync_hubspot for the rules."""
    from etl.hubspot_sync import DEFAULT_LOOKBACK, sync_hubspot
    from etl.mapping import Mapping

    check_writable(options.report_path, options.rejects_path, options.html_path)
    if not settings.hubspot_token:
        raise UsageError("no HubSpot token: set HUBSPOT_ACCESS_TOKEN (a private-app token)")
    check_url(settings.hubspot_base_url, allow_insecure_http=settings.allow_insecure_http, what="HubSpot URL")
    return await sync_hubspot(
        settings, options, job=job, mapping=mapping or Mapping.builtin("hubspot"), full=full, since=since,
        lookback=DEFAULT_LOOKBACK if lookback is None else lookback, full_every=full_every, on_archive=on_archive,
        transport=transport, progress=progress,
    )


def run_job(spec: JobSpec, settings: Settings | None = None, *, progress: Progress | None = None) -> RunReport:
    """Run a job once, holding its lock (a second overlapping run raises JobLocked at once)."""
    from etl.formats import builtin_formats, decide
    from etl.mapping import Mapping
    from etl.sources import CsvFileSource

    settings = settings or Settings.from_env(base_url=spec.base_url, hubspot_base_url=spec.hubspot_base_url)
    options = ImportOptions(
        client=spec.client, mode=spec.mode, dry_run=spec.dry_run, report_path=spec.report,
        rejects_path=spec.rejects, rate=spec.rate, concurrency=spec.concurrency, strict=spec.strict, job=spec.name,
        default_region=spec.default_region,
    )
    with open_state(settings) as state, state.job_lock(spec.name):
        if spec.source == "hubspot":
            mapping = Mapping.load(spec.mapping) if spec.mapping else None
            since = parse_since(spec.since) if spec.since else None
            lookback = parse_duration(spec.lookback) if spec.lookback is not None else None
            every = parse_duration(spec.full_every) if spec.full_every else None
            return anyio.run(lambda: import_hubspot(
                settings, options, job=spec.name, full=spec.full, since=since, mapping=mapping, lookback=lookback,
                full_every=every, on_archive=spec.on_archive, progress=progress,
            ))
        assert spec.path is not None
        source = CsvFileSource(spec.path)
        # As `import csv`: the export format is recognised from the headers unless the job names a mapping.
        mapping = decide(source.columns, source.sample(), builtin_formats(),
                         given=Mapping.load(spec.mapping) if spec.mapping else None, source=spec.path.name)
        return anyio.run(lambda: run_import(settings, source, mapping, options, progress=progress))
