"""`leadgenius-etl import csv` (and the `import` group: etl.cli.source_cmd adds the registry's sources)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import ImportCommon, finish, import_options, run_async, setup_logging
from etl.cli.source_cmd import SourceCommands
from etl.errors import UsageError
from etl.extract.csv import BATCH_ROWS
from etl.pipeline import ImportOptions, run_import
from etl.sources import Source

if TYPE_CHECKING:
    from etl.config import Settings
    from etl.mapping import Mapping

# SourceCommands adds `import <source>` for every registry entry that declares its command.
import_app = typer.Typer(help="Import leads into a LeadGenius client.", no_args_is_help=True, cls=SourceCommands)
app.add_typer(import_app, name="import")


def csv_mapping(source: Any, given: Path | None) -> Any:
    """The mapping for a CSV file (etl.extract.csv.job_mapping): --mapping if given, else the
    recognised export format, else a guess; resolved to the file's columns."""
    from etl.extract.csv import job_mapping
    from etl.mapping import Mapping

    return job_mapping(source, Mapping.load(given) if given else None)


def write_mapping(path: Path, mapping: Any, input_file: Path) -> None:
    from etl.formats import to_toml

    p = mapping.provenance
    header = (
        f"Mapping used for {input_file.name} ({p.label if p else mapping.name}), written by leadgenius-etl.\n"
        "Edit it and pass it back with --mapping; the format is described in etl/mappings/csv.toml."
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_toml(mapping, header=header), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def show_mapping(mapping: Any, preamble: str | None = None) -> None:
    """The mapping on the terminal: the format, field <- column(s) with a sample, what is left
    (and `preamble`: the lines skipped before the header, if any)."""
    from rich.console import Console
    from rich.markup import escape

    from etl.report import mapping_table

    console = Console(file=sys.stdout)
    info = mapping.report_dict()
    how = {"detected": "detected", "guessed": "GUESSED, check it", "given": "from --mapping"}.get(info["how"], "built-in")
    console.print(f"[bold]Format:[/bold] {escape(info['label'])} ({how})", highlight=False)
    if preamble:
        console.print(escape(preamble), highlight=False)
    console.print(mapping_table(info))
    if info["missing"]:
        console.print(f"[yellow]expected but missing: {escape(', '.join(info['missing']))}[/yellow]", highlight=False)
    unmapped = info["unmapped"]
    shown = ", ".join(unmapped[:12]) + (", …" if len(unmapped) > 12 else "")
    console.print(f"{len(unmapped)} unmapped column(s){': ' + escape(shown) if unmapped else ''}", highlight=False)


def run_source(source: Source, mapping: Mapping, options: ImportOptions, common: ImportCommon,
               settings: Settings | None = None) -> None:
    """Run a one-shot import (with the common options' settings unless given), progress bar and summary."""
    settings = settings or common.settings()
    setup_logging(common.quiet)
    with common.progress_bar() as bar:
        report = run_async(lambda: run_import(settings, source, mapping, options, progress=bar))
    finish(report, common.quiet)


@import_app.command("csv")
@handle_errors
@import_options
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV file (any common encoding and delimiter).")],
    client: Annotated[str, typer.Option("--client", help="Client name or slug (created if missing).")],
    save_mapping: Annotated[
        Path | None,
        typer.Option("--save-mapping", help="Write the mapping used (TOML) here; --mapping reads it back."),
    ] = None,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1, help="Records read, transformed and loaded at a time (memory).")
    ] = BATCH_ROWS,
    skip_rows: Annotated[
        int | None,
        typer.Option(
            "--skip-rows", min=0,
            help="Lines before the header (a title or notes) to skip; default: a known export's "
            "preamble (LinkedIn's Notes:) is found and skipped, else the header is line 1.",
        ),
    ] = None,
    *,
    common: ImportCommon,
) -> None:
    """Import a CSV file into a client. Without --mapping, the export format (Apollo, HubSpot,
    Salesforce, Pipedrive, ZoomInfo, Sales Navigator, lemlist, Instantly, Outlook, the seeds'
    own) is recognised from the headers; the mapping used is shown before the run."""
    from etl.extract.csv import CsvFileSource

    source = CsvFileSource(file, batch_rows, skip_rows=skip_rows)
    the_mapping = csv_mapping(source, common.mapping)
    if save_mapping:
        write_mapping(save_mapping, the_mapping, file)
    if not common.quiet:
        show_mapping(the_mapping, source.preamble_note())
    run_source(source, the_mapping, common.options(client), common)
