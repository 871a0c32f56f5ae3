"""`leadgenius-etl sync JOB.toml`: run a scheduled job once.

`import hubspot` and `import leadscraper` are jobs built from their options (etl.cli.source_cmd):
the same routine (etl.jobs.run_incremental), the same mark, the same lock as a `sync` of that job.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import DryRunOpt, QuietOpt, StateOpt, finish, setup_logging
from etl.jobs import JobSpec, run_job
from etl.sources import LOOKBACK

LookbackOpt = Annotated[str | None, typer.Option("--lookback", metavar=LOOKBACK.metavar, help=LOOKBACK.help)]


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
