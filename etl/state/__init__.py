"""Run state: the ledger (intents, outcomes), runs, high-water marks and job locks.

Two backends behind one interface (`Ledger`): SQLite (a file, the embedded default) and
PostgreSQL (a `postgresql://` URL, shared by several machines). `open_state(settings)` is the
only constructor; the schema is versioned and created or migrated on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.state.base import LEDGER_COLUMNS, Ledger, Outcome
from etl.state.location import mask_url

if TYPE_CHECKING:
    from etl.config import Settings

__all__ = ["LEDGER_COLUMNS", "Ledger", "Outcome", "describe_state", "open_state"]


def open_state(settings: Settings, *, create: bool = True) -> Ledger:
    """The state named by the settings (LEADGENIUS_ETL_STATE / --state), schema created or migrated.

    create=False for commands that only read it (`state info`, `runs`, `undo`, ...): where there is no
    state they raise StateNotFound and create nothing (no file, no directory, no schema)."""
    if settings.state_url:
        from etl.state.postgres import PostgresState

        return PostgresState(settings.state_url, create=create)
    from etl.state.sqlite import SqliteState

    return SqliteState(settings.state_path, create=create)


def no_state(where: str, why: str) -> str:
    """StateNotFound's message: where was looked, why it holds no state, and what to do."""
    return (f"no state at {where}: {why} (point --state or LEADGENIUS_ETL_STATE at the state, "
            "or run an import or sync to create it)")


def describe_state(settings: Settings) -> str:
    """Where the state lives, safe to print."""
    return mask_url(settings.state_url) if settings.state_url else str(settings.state_path)
