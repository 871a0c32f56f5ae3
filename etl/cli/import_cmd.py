"""`leadgenius-etl import csv|hubspot|leadgenius`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import (
    AuthFileOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
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
from etl.errors import InputFileError
from etl.pipeline import ImportOptions, Source, run_import
from etl.report import RunReport, summary_table

import_app = typer.Typer(help="Import leads into a LeadGenius client.", no_args_is_help=True)
app.add_typer(import_app, name="import")


def load_mapping(path: Path | None, builtin: str) -> Any:
    from etl.mapping import Mapping

    return Mapping.load(path) if path else Mapping.builtin(builtin)


def finish(report: RunReport, quiet: bool) -> None:
    """Print the summary table (stdout) and exit with the report's code."""
    if not quiet:
        from rich.console import Console

        console = Console(file=sys.stdout)
        console.print(summary_table(report))
        if report.target.get("reachable") is False:
            console.print(f"[yellow]target not read: {report.target.get('reason')}[/yellow]")
        if report.counts.failed:
            console.print(f"[red]{report.counts.failed} lead(s) refused by the target; see the report[/red]")
        if report.counts.missing:
            console.print(f"[red]{report.counts.missing} lead(s) acknowledged but missing after repair[/red]")
    raise typer.Exit(report.exit_code or 0)


def run_source(source: Source, mapping: Any, options: ImportOptions, quiet: bool, **settings_kw: Any) -> None:
    settings = settings_from(**settings_kw)
    setup_logging(quiet)
    with ProgressBar(enabled=not quiet and not options.dry_run) as bar:
        report = run_async(lambda: run_import(settings, source, mapping, options, progress=bar))
    finish(report, quiet)


@import_app.command("csv")
@handle_errors
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV file (any common encoding and delimiter).")],
    client: Annotated[str, typer.Option("--client", help="Client name or slug (created if missing).")],
    mapping: MappingOpt = None,
    mode: ModeOpt = "insert",
    dry_run: DryRunOpt = False,
    report: ReportOpt = None,
    rejects: RejectsOpt = None,
    report_html: HtmlOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = 8,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    base_url: BaseUrlOpt = None,
    auth_file: AuthFileOpt = None,
    state: StateOpt = None,
    allow_insecure_http: InsecureOpt = False,
) -> None:
    """Import a CSV file into a client."""
    from etl.sources import CsvFileSource

    source = CsvFileSource(file)
    the_mapping = load_mapping(mapping, "csv")
    options = ImportOptions(
        client=client, mode=check_mode(mode), dry_run=dry_run, report_path=report, rejects_path=rejects,  # type: ignore[arg-type]
        html_path=report_html, rate=rate, concurrency=concurrency, strict=strict,
    )
    run_source(source, the_mapping, options, quiet, base_url=base_url, auth_file=auth_file, state=state,
               allow_insecure_http=allow_insecure_http)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from None
