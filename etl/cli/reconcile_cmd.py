"""`leadgenius-etl reconcile` and `leadgenius-etl runs`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import (
    AuthFileOpt,
    BaseUrlOpt,
    InsecureOpt,
    ReportOpt,
    StateOpt,
    run_async,
    settings_from,
    setup_logging,
)
from etl.errors import UsageError
from etl.load.api import LeadGeniusApi
from etl.load.clients import resolve_client
from etl.reconcile import reconcile as do_reconcile
from etl.report import write_json_atomic
from etl.state import describe_state, open_state


@app.command("reconcile")
@handle_errors
def reconcile_cmd(
    client: Annotated[str, typer.Option("--client", help="Client slug (or name).")],
    repair: Annotated[bool, typer.Option("--repair", help="Re-POST acknowledged leads that are missing; delete our own doubles.")] = False,
    report: ReportOpt = None,
    base_url: BaseUrlOpt = None,
    auth_file: AuthFileOpt = None,
    state: StateOpt = None,
    allow_insecure_http: InsecureOpt = False,
) -> None:
    """Re-read a client to the end and compare it with every lead the ledger says was loaded."""
    setup_logging(quiet=False)
    settings = settings_from(base_url=base_url, auth_file=auth_file, state=state, allow_insecure_http=allow_insecure_http)
    ledger = open_state(settings, create=False)  # nothing to compare without a ledger

    async def go() -> dict[str, object]:
        async with LeadGeniusApi(settings) as api:
            found = await resolve_client(api, client, create=False)
            if found is None:
                raise UsageError(f"no client {client!r} in this LeadGenius account")
            slug = found["client_id"]
            target = f"{api.base_url}#{api.keeper.user_id}"
            company_id = (await api.company()).get("company_id") if settings.api_key else None
            rec = await do_reconcile(api, ledger, target=target, client_id=slug, keys=None, repair=repair,
                                     company_id=company_id)
            return {
                "client_id": slug, "repair": repair, "confirmed": rec.confirmed, "missing": rec.missing,
                **rec.to_dict(), "target_leads": rec.snapshot.leads if rec.snapshot else None,
                "requests": api.stats.to_dict(),
            }

    try:
        result = run_async(go)
    finally:
        ledger.close()
    if report:
        write_json_atomic(report, result)
    print(f"client {result['client_id']}: {result['confirmed']} confirmed, {result['missing']} missing, "
          f"{result['repaired']} repaired, {result['duplicates_removed']} duplicate(s) removed, "
          + (f"{result['landed_late']} unanswered create(s) found landed, " if result["landed_late"] else "")
          + f"{result['target_leads']} leads in the target")
    raise typer.Exit(1 if result["missing"] else 0)


@app.command("runs")
@handle_errors
def runs_cmd(
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    state: StateOpt = None,
) -> None:
    """The run history kept in the state database (audit)."""
    settings = settings_from(state=state)
    ledger = open_state(settings, create=False)
    rows = ledger.runs(limit)
    ledger.close()
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs in {describe_state(settings)}")
    table.add_column("run id", no_wrap=True)
    for col in ("started (UTC)", "command", "source", "client", "mode", "new", "upd", "fail", "exit", "undone"):
        table.add_column(col, overflow="fold")
    for r in rows:
        c = r["counts"] or {}
        started = datetime.fromtimestamp(r["started_at"], UTC).strftime("%m-%d %H:%M:%S")
        if r["command"] == "undo":
            command = f"undo {r['undo_of']}"
            new, upd = str(c.get("deleted", "")), str(c.get("restored", ""))
        else:
            command, new, upd = r["command"], str(c.get("created", "")), str(c.get("updated", ""))
        table.add_row(r["run_id"], started, command + (" (dry)" if r["dry_run"] else ""), r["source"] or "",
                      r["client_id"] or "", r["mode"] or "", new, upd, str(c.get("failed", "")),
                      r["status"] if r["exit_code"] is None else str(r["exit_code"]), _undone(r))
    # Piped or logged, rich assumes 80 columns and folds eleven columns into one-letter slivers;
    # a file gets the table's natural width (a terminal keeps its own).
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240).print(table)


def _undone(run: dict[str, object]) -> str:
    """Whether a run was undone: by which undo, and whether that undo left something (exit != 0)."""
    if not run.get("undone_by"):
        return ""
    if run.get("undo_exit") == 0:
        return f"yes ({run['undone_by']})"
    state = "in progress or killed" if run.get("undo_exit") is None else "partly"
    return f"{state} ({run['undone_by']})"
