"""`leadgenius-etl import hubspot` and `leadgenius-etl sync JOB.toml`.

An incremental import from the command line is a job built from its options: the same routine
(etl.jobs.run_incremental), the same mark, the same lock as a scheduled `sync` of that job.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import DryRunOpt, ImportCommon, QuietOpt, StateOpt, import_options, run_async, setup_logging
from etl.cli.import_cmd import finish, import_app
from etl.config import Settings
from etl.jobs import JobSpec, default_job_name, run_job, run_spec
from etl.state import open_state

LookbackOpt = Annotated[
    str | None,
    typer.Option("--lookback", metavar="DURATION",
                 help="Re-read this much before the mark: 90s, 10m, 1h (HubSpot default 10m: its search index lags; "
                      "LeadScraper default 2m)."),
]


def job_from_options(source: str, client: str, common: ImportCommon, *, job: str | None,
                     **source_keys: object) -> JobSpec:
    """A JobSpec for an incremental import given on the command line."""
    from etl.transform.values import region_option

    return JobSpec(
        name=job or default_job_name(source, client), source=source, client=client,
        mode=common.options(client).mode, mapping=common.mapping, rate=common.rate,
        concurrency=common.concurrency, report=common.report, rejects=common.rejects,
        report_html=common.report_html, strict=common.strict, dry_run=common.dry_run, base_url=common.base_url,
        default_region=region_option(common.default_region),
        **source_keys,  # type: ignore[arg-type]
    )


def run_job_cmd(spec: JobSpec, settings: Settings, quiet: bool) -> None:
    """Run a job under its lock with a progress bar, print the summary, exit with its code."""
    from etl.cli.common import ProgressBar

    setup_logging(quiet)
    with open_state(settings) as state, state.job_lock(spec.name), \
            ProgressBar(enabled=not quiet and not spec.dry_run) as bar:
        result = run_async(lambda: run_spec(spec, settings, progress=bar))
    finish(result, quiet)


@import_app.command("hubspot")
@handle_errors
@import_options
def import_hubspot_cmd(
    client: Annotated[str, typer.Option("--client", help="Client name or slug (created if missing).")],
    full: Annotated[bool, typer.Option("--full", help="Read every contact, ignoring the high-water mark.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Read contacts modified since this ISO 8601 time.")] = None,
    lookback: LookbackOpt = None,
    job: Annotated[str | None, typer.Option("--job", help="State key for the high-water mark (default hubspot:<client>).")] = None,
    hubspot_base_url: Annotated[str | None, typer.Option("--hubspot-base-url", envvar="HUBSPOT_BASE_URL", help="HubSpot API root.")] = None,
    *,
    common: ImportCommon,
) -> None:
    """Import HubSpot contacts (with their primary company) into a client; incremental after the first run."""
    if full and since:
        raise typer.BadParameter("--full and --since are exclusive")
    spec = job_from_options("hubspot", client, common, job=job, full=full, since=since, lookback=lookback,
                            hubspot_base_url=hubspot_base_url)
    spec.since_time(), spec.lookback_delta()  # a bad value fails before anything runs
    run_job_cmd(spec, common.settings(hubspot_base_url=hubspot_base_url), common.quiet)


@app.command("sync")
@handle_errors
def sync_cmd(
    job_file: Annotated[Path, typer.Argument(help="Job file (TOML): source, client, mode, mapping, rate.")],
    dry_run: DryRunOpt = False,
    full: Annotated[bool, typer.Option("--full", help="Incremental jobs: read everything once (PUTs only for changed leads).")] = False,
    lookback: LookbackOpt = None,
    quiet: QuietOpt = False,
    state: StateOpt = None,
) -> None:
    """Run a scheduled job once (cron/systemd). Overlapping runs of one job exit 4 at once."""
    from etl.cli.common import ProgressBar, settings_from

    spec = JobSpec.load(job_file)
    if dry_run:
        spec = replace(spec, dry_run=True)
    if full:
        spec = replace(spec, full=True)
    if lookback is not None:
        spec = replace(spec, lookback=lookback)
        spec.lookback_delta()  # a bad value is a usage error before anything runs
    settings = settings_from(base_url=spec.base_url, hubspot_base_url=spec.hubspot_base_url, state=state)
    setup_logging(quiet)
    with ProgressBar(enabled=not quiet and not spec.dry_run) as bar:
        result = run_job(spec, settings, progress=bar)
    finish(result, quiet)


@import_app.command("leadscraper")
@handle_errors
@import_options
def import_leadscraper_cmd(
    client: Annotated[str, typer.Option("--client", help="Client name or slug (created if missing).")],
    job_id: Annotated[str | None, typer.Option("--job-id", help="Only leads of this LeadScraper scraping job.")] = None,
    score_min: Annotated[int | None, typer.Option("--score-min", min=0, max=100, help="Only leads scored at least N (0-100).")] = None,
    score_max: Annotated[int | None, typer.Option("--score-max", min=0, max=100, help="Only leads scored at most N (0-100).")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only hot, warm or cold leads.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only leads created after this ISO 8601 time (overrides the mark once).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Read every matching lead, ignoring the mark.")] = False,
    lookback: LookbackOpt = None,
    job: Annotated[str | None, typer.Option("--job", help="State key for the mark (default leadscraper:<client>).")] = None,
    leadscraper_base_url: Annotated[str | None, typer.Option("--leadscraper-base-url", envvar="LEADSCRAPER_BASE_URL", help="LeadScraper API root, with /v1.")] = None,
    *,
    common: ImportCommon,
) -> None:
    """Import LeadScraper leads (filtered on the server) into a client; incremental after the first run.

    Needs LEADSCRAPER_API_KEY. Reads list pages only (100 leads per request) unless the mapping asks
    for a detail-only column; the dry run says what the read costs against the hour's budget."""
    if full and since:
        raise typer.BadParameter("--full and --since are exclusive")
    params = {"job_id": job_id, "score_min": score_min, "score_max": score_max,
              "status": status.lower() if status else None, "leadscraper_base_url": leadscraper_base_url}
    spec = job_from_options("leadscraper", client, common, job=job, full=full, since=since, lookback=lookback,
                            params={k: v for k, v in params.items() if v is not None})
    spec.since_time(), spec.lookback_delta()  # a bad value fails before anything runs
    run_job_cmd(spec, common.settings(leadscraper_base_url=leadscraper_base_url), common.quiet)
