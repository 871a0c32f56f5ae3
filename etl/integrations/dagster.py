"""Dagster: job files as assets, one asset job each, and their schedules (`pip install leadgenius-etl[dagster]`).

    # definitions.py, loaded by `dagster dev -f definitions.py`
    from etl.integrations.dagster import job_definitions
    defs = job_definitions("jobs/")          # every jobs/*.toml

Each materialisation runs `etl.jobs.run_job`, holding the job's lock in the state that
LEADGENIUS_ETL_STATE names: with a postgresql:// URL, one lock for every worker of the deployment.
It reports the run's counts as metadata, fails on exit 1 (failed or missing leads), and asks
Dagster to retry later when another run of the job holds the lock (JobLocked).

A job file's schedule is an optional `[schedule]` table beside its `[job]` table:

    [schedule]
    cron = "*/10 * * * *"
    timezone = "Europe/Berlin"    # default UTC
"""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation as a live type.

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from etl.config import Settings, read_toml
from etl.errors import ConfigError, JobLocked
from etl.jobs import JobSpec, run_job
from etl.report import RunReport

SettingsSource = Settings | Callable[[JobSpec], Settings] | None


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = "UTC"


def schedule_of(job_file: Path) -> Schedule | None:
    """The job file's `[schedule]` table, checked; None when it has none."""
    raw = read_toml(job_file, "job file").get("schedule")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("cron"), str) or not raw["cron"].strip():
        raise ConfigError(f"job file {job_file}: [schedule] needs cron = \"<cron expression>\"")
    unknown = sorted(set(raw) - {"cron", "timezone"})
    if unknown:
        raise ConfigError(
            f"job file {job_file}: unknown key(s) in [schedule]: {', '.join(unknown)}; known: cron, timezone"
        )
    return Schedule(cron=raw["cron"].strip(), timezone=str(raw.get("timezone") or "UTC"))


def asset_name(job: str) -> str:
    """Dagster names take letters, digits and underscores only: `hubspot:acme-corp` -> `hubspot_acme_corp`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", job).strip("_") or "job"
    return name if not name[0].isdigit() else f"job_{name}"


def report_metadata(report: RunReport) -> dict[str, Any]:
    """What a materialisation shows: every count, the exit code, the run id (for `runs` / `undo`), timings."""
    meta: dict[str, Any] = {name: int(value) for name, value in vars(report.counts).items()}
    meta.update(exit_code=report.exit_code, run_id=report.run_id or "", client_id=report.client_id or "",
                mode=report.mode, dry_run=report.dry_run, duration_s=float(report.duration_s or 0.0))
    if report.requests:
        meta["requests"] = dg.MetadataValue.json(report.requests)
    return meta


def _settings_for(spec: JobSpec, settings: SettingsSource) -> Settings | None:
    if settings is None:
        return None  # run_job reads the environment, as `leadgenius-etl sync` does
    return settings(spec) if callable(settings) else settings


def job_asset(
    job_file: str | Path,
    *,
    settings: SettingsSource = None,
    max_retries: int = 3,
    retry_wait_s: float = 60.0,
    key_prefix: str | None = "leadgenius",
    group_name: str = "leadgenius",
) -> dg.AssetsDefinition:
    """One job file as a Dagster asset. The file is read now (a broken one fails at load time, in the
    Dagster UI) and again at each materialisation (an edit takes effect without a reload)."""
    path = Path(job_file).resolve()
    spec = JobSpec.load(path)

    @dg.asset(
        name=asset_name(spec.name),
        key_prefix=key_prefix,
        group_name=group_name,
        description=f"leadgenius-etl job {spec.name!r}: {spec.source} -> LeadGenius client {spec.client!r} "
                    f"({spec.mode}); {path}",
        metadata={"job_file": str(path), "job": spec.name, "source": spec.source, "client": spec.client},
        kinds={"python"},
    )
    def _materialise(context: dg.AssetExecutionContext) -> dg.MaterializeResult[Any]:
        current = JobSpec.load(path)
        try:
            report = run_job(current, _settings_for(current, settings))
        except JobLocked as exc:
            context.log.warning(f"{exc}; retrying in {retry_wait_s:g} s")
            raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=retry_wait_s) from exc
        metadata = report_metadata(report)
        if report.exit_code == 1:
            c = report.counts
            raise dg.Failure(
                description=f"job {current.name!r} finished with exit 1: {c.failed} failed, {c.missing} missing, "
                            f"{c.rejected} rejected (run {report.run_id})",
                metadata=metadata,
                allow_retries=False,  # a refused lead or a strict reject is not fixed by running again
            )
        context.log.info(f"job {current.name!r}: {report.counts.created} created, {report.counts.updated} updated, "
                         f"{report.counts.confirmed} confirmed")
        return dg.MaterializeResult(metadata=metadata)

    return _materialise


def job_files(*paths: str | Path) -> list[Path]:
    """Job files named directly, and every *.toml in the directories named."""
    found: list[Path] = []
    for p in map(Path, paths):
        found += sorted(p.glob("*.toml")) if p.is_dir() else [p]
    if not found:
        raise ConfigError(f"no job files in {', '.join(map(str, paths)) or 'nothing'}")
    return found


def job_definitions(*paths: str | Path, **asset_options: Any) -> dg.Definitions:
    """Assets for the job files (directories: every *.toml), an asset job for each, and a schedule for each
    job file that has a `[schedule]` table. `asset_options` go to `job_asset`."""
    assets: list[dg.AssetsDefinition] = []
    jobs: list[dg.UnresolvedAssetJobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    names: dict[str, Path] = {}
    for path in job_files(*paths):
        asset = job_asset(path, **asset_options)
        name = asset.key.path[-1]
        if name in names:
            raise ConfigError(f"job files {names[name]} and {path} give the same Dagster name {name!r}")
        names[name] = path
        job = dg.define_asset_job(f"{name}_job", selection=[asset.key])
        assets.append(asset)
        jobs.append(job)
        schedule = schedule_of(path)
        if schedule:
            try:  # Dagster checks the cron expression and the time zone
                schedules.append(dg.ScheduleDefinition(name=f"{name}_schedule", job=job, cron_schedule=schedule.cron,
                                                       execution_timezone=schedule.timezone))
            except dg.DagsterInvalidDefinitionError as exc:
                raise ConfigError(f"job file {path}: [schedule] is not valid: {exc}") from None
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)


__all__ = ["Schedule", "asset_name", "job_asset", "job_definitions", "job_files", "report_metadata",
                          "schedule_of"]
