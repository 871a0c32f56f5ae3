"""`leadgenius-etl undo RUN_ID | --last`: a thin shell over etl.undo."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import (
    AuthFileOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    InsecureOpt,
    ProgressBar,
    QuietOpt,
    RateOpt,
    ReportOpt,
    StateOpt,
    run_async,
    settings_from,
    setup_logging,
)
from etl.errors import UsageError
from etl.pipeline import check_writable
from etl.undo import UndoOptions, UndoReport, undo_run


@app.command("undo")
@handle_errors
def undo_cmd(
    run_id: Annotated[str | None, typer.Argument(help="The run to undo (`leadgenius-etl runs` lists them).")] = None,
    last: Annotated[bool, typer.Option("--last", help="Undo the newest run that wrote anything.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read the target; say what would be deleted, restored "
                                                            "and left as a conflict; write nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Revert leads changed after the run's write too "
                                                        "(an update: only the fields the run changed).")] = False,
    report: ReportOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = 8,
    quiet: QuietOpt = False,
    base_url: BaseUrlOpt = None,
    auth_file: AuthFileOpt = None,
    state: StateOpt = None,
    allow_insecure_http: InsecureOpt = False,
) -> None:
    """Undo an import or sync run: delete exactly the leads it created, put back the fields it changed."""
    if (run_id is None) == (not last):
        raise UsageError("give either a RUN_ID or --last (not both)")
    check_writable(report)
    settings = settings_from(base_url=base_url, auth_file=auth_file, state=state,
                             allow_insecure_http=allow_insecure_http)
    setup_logging(quiet)
    options = UndoOptions(dry_run=dry_run, force=force, report_path=report, rate=rate, concurrency=concurrency)
    with ProgressBar(enabled=not quiet and not dry_run, label="undo") as bar:
        result = run_async(lambda: undo_run(settings, run_id, options, progress=bar))
    if not quiet:
        _summary(result)
    raise typer.Exit(result.exit_code or 0)


def _summary(report: UndoReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout)
    if report.note:
        console.print(f"run {report.run_id}: {report.note}")
        return
    verb = "would be " if report.dry_run else ""
    title = f"{'DRY RUN — ' if report.dry_run else ''}undo of {report.run_id} ({report.client_id or '?'})"
    table = Table(title=title, header_style="bold")
    table.add_column("")
    table.add_column("leads", justify="right")
    c = report.counts
    rows: list[tuple[str, Any]] = [
        (f"{verb}deleted", c.deleted), (f"{verb}restored", c.restored), ("conflicts left alone", c.conflicts),
        ("already gone", c.already_gone), ("already as before", c.already_reverted),
        ("fields that cannot be emptied", c.unclearable), ("never written", c.not_written), ("failed", c.failed),
    ]
    if c.cannot_restore:
        rows.append(("deleted by the run, not restorable", c.cannot_restore))
    for label, n in rows:
        table.add_row(label, f"{n:,}")
    table.add_row("requests", f"{report.requests.get('total', 0):,}")
    table.add_row("duration", f"{report.duration_s:.1f} s")
    console.print(table)
    for conflict in report.conflicts[:20]:
        changes = ", ".join(f"{f}: {conflict['wrote'].get(f)!r} -> {conflict['now'].get(f)!r}" for f in conflict["now"])
        by = f" by run {conflict['changed_by_run']}" if conflict.get("changed_by_run") else ""
        what = "reverted anyway (--force)" if conflict["forced"] else "left alone"
        console.print(f"[yellow]conflict[/yellow] {conflict['lead_id']} <{conflict['email']}> changed after the "
                      f"run's write{by}, {what}: {changes or 'updatedAt moved'}")
    if len(report.conflicts) > 20:
        console.print(f"… and {len(report.conflicts) - 20} more conflicts (see --report)")
    if c.conflicts and not report.force:
        console.print("[yellow]undo --force reverts the conflicts too[/yellow]")
    if c.unclearable:
        console.print(f"[yellow]{c.unclearable} lead(s) keep fields the run filled: they were empty before, and "
                      "the LeadGenius API cannot empty a field (null and \"\" are refused); see the report[/yellow]")
    if c.failed:
        console.print(f"[red]{c.failed} lead(s) could not be reverted; see the report[/red]")
    if c.cannot_restore:
        shown = ", ".join(f"{d['lead_id']} <{d['email']}>" for d in report.cannot_restore[:10])
        more = f" and {c.cannot_restore - 10} more (see the report)" if c.cannot_restore > 10 else ""
        console.print(f"[yellow]{c.cannot_restore} lead(s) the run deleted (on_archive = \"delete\") cannot be "
                      f"brought back: the LeadGenius API has no undelete. Not restored: {shown}{more}[/yellow]")
    for mark in report.marks:
        console.print(f"mark {mark['job']}/{mark['name']}: {mark['from']} -> {mark['to'] or '(none: next sync is full)'}")
