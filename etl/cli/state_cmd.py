"""`leadgenius-etl state info` and `leadgenius-etl state migrate --to URL_OR_PATH`."""

from __future__ import annotations

from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import StateOpt, settings_from
from etl.config import Settings
from etl.errors import UsageError
from etl.state import describe_state, open_state
from etl.state.base import TABLES
from etl.state.location import database_identity

state_app = typer.Typer(help="The state database: where it is, and moving it (SQLite <-> PostgreSQL).",
                        no_args_is_help=True)
app.add_typer(state_app, name="state")


@state_app.command("info")
@handle_errors
def info_cmd(state: StateOpt = None) -> None:
    """Where the state lives, its schema version and how many rows each table holds."""
    settings = settings_from(state=state)
    with open_state(settings, create=False) as store:
        counts = {table: store.count(table) for table in TABLES}
        version = store.schema_version()
    print(f"state {describe_state(settings)}: schema version {version}, "
          + ", ".join(f"{n} {table}" for table, n in counts.items()))


@state_app.command("migrate")
@handle_errors
def migrate_cmd(
    to: Annotated[str, typer.Option("--to", help="Destination: a postgresql:// URL or the path of a SQLite file.")],
    merge: Annotated[bool, typer.Option("--merge", help="Copy into a destination that already holds state (rows with the same key are replaced).")] = False,
    state: StateOpt = None,
) -> None:
    """Copy the whole state (ledger, runs, marks) to another database, e.g. from a laptop's SQLite file
    into the PostgreSQL a scheduler shares. Stop scheduled jobs first: writes made during the copy are not moved."""
    source = settings_from(state=state)
    target = Settings.from_env(state=to)
    if same_place(source, target):
        raise UsageError(f"--to names the state being copied ({describe_state(source)})")
    with open_state(source, create=False) as src, open_state(target) as dst:
        if not merge and not dst.is_empty():
            raise UsageError(f"{describe_state(target)} already holds state; pass --merge to copy into it anyway")
        expected = {table: src.count(table) for table in TABLES}
        written = dst.load({table: src.dump(table) for table in TABLES})
        after = {table: dst.count(table) for table in TABLES}
    short = [t for t in TABLES if written.get(t, 0) != expected[t] or after[t] < expected[t]]
    if short:
        raise UsageError(f"the copy is incomplete for {', '.join(short)}: expected {expected}, wrote {written}")
    print(f"copied {', '.join(f'{written[t]} {t}' for t in TABLES)} from {describe_state(source)} "
          f"to {describe_state(target)}; point LEADGENIUS_ETL_STATE at the new one")



def same_place(a: Settings, b: Settings) -> bool:
    """Two settings naming one database: the same file, or the same server and database (whoever logs in)."""
    if a.state_url and b.state_url:
        return database_identity(a.state_url) == database_identity(b.state_url)
    if a.state_url or b.state_url:
        return False
    return a.state_path.resolve() == b.state_path.resolve()
