"""`leadgenius-etl import hubspot` and `leadgenius-etl sync JOB.toml`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import (
    AuthFileOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    DefaultRegionOpt,
    DryRunOpt,
    HtmlOpt,
    InsecureOpt,
    MappingOpt,
    ModeOpt,
    ProgressBar,
    QuietOpt,
    RateOpt,
    RejectsOpt,
    ReportOpt,
    StateOpt,
    StrictOpt,
    check_mode,
    run_async,
    settings_from,
    setup_logging,
)
from etl.cli.import_cmd import finish, import_app
from etl.jobs import JobSpec, hubspot_job_name, import_hubspot, parse_duration, parse_since, run_job
from etl.pipeline import ImportOptions
from etl.state import open_state


@import_app.command("hubspot")
@handle_errors
def import_hubspot_cmd(
    client: Annotated[str, typer.Option("--client", help="Client name or slug (created if missing).")],
    full: Annotated[bool, typer.Option("--full", help="Read every contact, ignoring the high-water mark.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Read contacts modified since this ISO 8601 time.")] = None,
    job: Annotated[str | None, typer.Option("--job", help="State key for the high-water mark (default hubspot:<client>).")] = None,
    lookback: Annotated[str | None, typer.Option("--lookback", metavar="DURATION", help="Re-read this much before the mark (HubSpot's search index lags): 90s, 10m, 1h. Default 10m.")] = None,
    hubspot_base_url: Annotated[str | None, typer.Option("--hubspot-base-url", envvar="HUBSPOT_BASE_URL", help="HubSpot API root.")] = None,
    mapping: MappingOpt = None,
    mode: ModeOpt = "insert",
    dry_run: DryRunOpt = False,
    report: ReportOpt = None,
    rejects: RejectsOpt = None,
    report_html: HtmlOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = 8,
    strict: StrictOpt = False,
    default_region: DefaultRegionOpt = None,
    quiet: QuietOpt = False,
    base_url: BaseUrlOpt = None,
    auth_file: AuthFileOpt = None,
    state: StateOpt = None,
    allow_insecure_http: InsecureOpt = False,
) -> None:
    """Import HubSpot contacts (with their primary company) into a client; incremental after the first run."""
    from etl.mapping import Mapping
    from etl.transform.values import region_option

    if full and since:
        raise typer.BadParameter("--full and --since are exclusive")
    settings = settings_from(base_url=base_url, auth_file=auth_file, state=state,
                             allow_insecure_http=allow_insecure_http, hubspot_base_url=hubspot_base_url)
    setup_logging(quiet)
    the_mapping = Mapping.load(mapping) if mapping else Mapping.builtin("hubspot")
    job_name = job or hubspot_job_name(client)
    options = ImportOptions(client=client, mode=check_mode(mode), dry_run=dry_run, report_path=report,  # type: ignore[arg-type]
                            rejects_path=rejects, html_path=report_html, rate=rate, concurrency=concurrency,
                            strict=strict, job=job_name, default_region=region_option(default_region))
    start = parse_since(since) if since else None
    back = parse_duration(lookback) if lookback is not None else None
    with open_state(settings) as lock_state, lock_state.job_lock(job_name), ProgressBar(enabled=not quiet and not dry_run) as bar:
        result = run_async(lambda: import_hubspot(settings, options, job=job_name, full=full, since=start,
                                                  mapping=the_mapping, lookback=back, progress=bar))
    finish(result, quiet)


@app.command("sync")
@handle_errors
def sync_cmd(
    job_file: Annotated[Path, typer.Argument(help="Job file (TOML): source, client, mode, mapping, rate.")],
    dry_run: DryRunOpt = False,
    full: Annotated[bool, typer.Option("--full", help="HubSpot jobs: read everything once (PUTs only for changed leads).")] = False,
    lookback: Annotated[str | None, typer.Option("--lookback", metavar="DURATION", help="HubSpot jobs: re-read this much before the mark, overriding the job's `lookback` (default 10m).")] = None,
    quiet: QuietOpt = False,
    state: StateOpt = None,
) -> None:
    """Run a scheduled job once (cron/systemd). Overlapping runs of one job exit 4 at once."""
    spec = JobSpec.load(job_file)
    if dry_run:
        spec = replace(spec, dry_run=True)
    if full:
        spec = replace(spec, full=True)
    if lookback is not None:
        parse_duration(lookback)  # a bad value is a usage error before anything runs
        spec = replace(spec, lookback=lookback)
    settings = settings_from(base_url=spec.base_url, hubspot_base_url=spec.hubspot_base_url, state=state)
    setup_logging(quiet)
    with ProgressBar(enabled=not quiet and not spec.dry_run) as bar:
        result = run_job(spec, settings, progress=bar)
    finish(result, quiet)
