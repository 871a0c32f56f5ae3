"""`leadgenius-etl export --company-id ID [--client SLUG] [--table enrich|source] [--fields a,b] --out FILE`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import (
    AuthFileOpt,
    BaseUrlOpt,
    InsecureOpt,
    ProgressBar,
    QuietOpt,
    RateOpt,
    ReportOpt,
    run_async,
    settings_from,
    setup_logging,
)
from etl.errors import UsageError
from etl.pipeline import check_writable
from etl.report import write_json_atomic
from etl.slug import slugify


def parse_fields(raw: str | None) -> list[str] | None:
    """`a,b , c` -> ["a", "b", "c"]; an empty list is a usage error, not "every field"."""
    if raw is None:
        return None
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    if not fields:
        raise UsageError("--fields needs at least one field name (e.g. --fields email,firstName)")
    return fields


def summary_line(report: dict[str, object]) -> str:
    rows = int(report["rows"])  # type: ignore[call-overload]
    size = int(report["bytes"])  # type: ignore[call-overload]
    return (
        f"exported {rows:,} lead(s) from {report['company_id']}/{report['client_id']} ({report['table']}) "
        f"to {report['out']} [{report['format']}, {size / 1e6:.1f} MB, {report['pages']} page(s), "
        f"{report['duration_s']} s]"
    )


@app.command("export")
@handle_errors
def export(
    out: Annotated[
        Path, typer.Option("--out", help="Output file; the format follows the suffix: .csv, .parquet, .jsonl.")
    ],
    company_id: Annotated[
        str | None,
        typer.Option("--company-id", help="Company to export (default: the logged-in user's, via GET /api/company)."),
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="Only this client (slug); default: all.")] = None,
    table: Annotated[
        str, typer.Option("--table", help="enrich (EnrichLeads, default) or source (SourceLeads).")
    ] = "enrich",
    fields: Annotated[
        str | None, typer.Option("--fields", help="Comma-separated lead fields to keep (id is always included).")
    ] = None,
    report: ReportOpt = None,
    rate: RateOpt = None,
    quiet: QuietOpt = False,
    base_url: BaseUrlOpt = None,
    auth_file: AuthFileOpt = None,
    allow_insecure_http: InsecureOpt = False,
) -> None:
    """Export leads to CSV (formulas neutralised), Parquet (typed) or JSONL, streaming page by page."""
    from etl.export import run_export

    if table not in ("enrich", "source"):
        raise UsageError(f"--table must be enrich or source, not {table!r}")
    wanted = parse_fields(fields)
    check_writable(out, report)
    if client is not None and client.strip() != slugify(client):
        # a client name where a slug belongs would silently export nothing (leads carry the slug)
        print(f"leadgenius-etl: note: --client {client!r} is not a slug; exporting client {slugify(client)!r}",
              file=sys.stderr)
        client = slugify(client)
    settings = settings_from(base_url=base_url, auth_file=auth_file, allow_insecure_http=allow_insecure_http)
    setup_logging(quiet)
    with ProgressBar(enabled=not quiet, label="export") as bar:
        result = run_async(
            lambda: run_export(
                settings,
                company_id=company_id,
                client_id=client,
                table=table,  # type: ignore[arg-type]
                fields=wanted,
                out=out,
                progress=bar,
                rate=rate,
            )
        )
    if report:
        write_json_atomic(report, result)
    if not quiet:
        print(summary_line(result), file=sys.stdout)
        if not result["rows"] and client:
            print(f"leadgenius-etl: note: no leads under client slug {client!r} in {result['company_id']}",
                  file=sys.stderr)
