"""Optional SQLite persistence of the sandbox state: write-through, one transaction per store operation.

The default (no `db_path`) is `NullPersistence`, so the in-memory path pays nothing. With a path,
every mutation is written before the API answers, so a restart finds exactly what was acknowledged
and stored (not what the batch quirk dropped).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leads (
    id TEXT PRIMARY KEY, tbl TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leads_seq ON leads (seq);
CREATE TABLE IF NOT EXISTS refresh_tokens (token TEXT PRIMARY KEY, user_id TEXT NOT NULL);
"""


@dataclass
class LoadedState:
    """What a previous run left in the database."""

    meta: dict[str, str] = field(default_factory=dict)
    clients: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (seq, data)
    leads: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # (table, seq, data)
    refresh_tokens: dict[str, str] = field(default_factory=dict)


class NullPersistence:
    """In-memory only: every write is a no-op."""

    def load(self) -> LoadedState:
        return LoadedState()

    def put_meta(self, key: str, value: str) -> None:
        pass

    def put_clients(self, clients: Iterable[tuple[int, dict[str, Any]]]) -> None:
        pass

    def delete_clients(self, ids: Iterable[str]) -> None:
        pass

    def put_leads(self, table: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        pass

    def delete_leads(self, ids: Iterable[str]) -> None:
        pass

    def put_refresh_token(self, token: str, user_id: str) -> None:
        pass

    def wipe(self) -> None:
        pass

    def close(self) -> None:
        pass


class SqlitePersistence(NullPersistence):
    """Write-through SQLite store; each call is one committed transaction."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def load(self) -> LoadedState:
        with self._lock:
            state = LoadedState()
            state.meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            state.clients = [
                (seq, json.loads(d)) for seq, d in self._db.execute("SELECT seq, data FROM clients ORDER BY seq")
            ]
            state.leads = [
                (tbl, seq, json.loads(d))
                for tbl, seq, d in self._db.execute("SELECT tbl, seq, data FROM leads ORDER BY seq")
            ]
            state.refresh_tokens = dict(self._db.execute("SELECT token, user_id FROM refresh_tokens").fetchall())
            return state

    def put_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(key, value)])

    def put_clients(self, clients: Iterable[tuple[int, dict[str, Any]]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO clients VALUES (?, ?, ?)",
            ((c["id"], seq, json.dumps(c)) for seq, c in clients),
        )

    def delete_clients(self, ids: Iterable[str]) -> None:
        self._write("DELETE FROM clients WHERE id = ?", ((i,) for i in ids))

    def put_leads(self, table: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO leads VALUES (?, ?, ?, ?)",
            ((d["id"], table, seq, json.dumps(d)) for seq, d in rows),
        )

    def delete_leads(self, ids: Iterable[str]) -> None:
        self._write("DELETE FROM leads WHERE id = ?", ((i,) for i in ids))

    def put_refresh_token(self, token: str, user_id: str) -> None:
        self._write("INSERT OR REPLACE INTO refresh_tokens VALUES (?, ?)", [(token, user_id)])

    def wipe(self) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            for table in ("clients", "leads", "refresh_tokens"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_persistence(db_path: str | None) -> NullPersistence:
    """SQLite write-through when a path is given, else the no-op in-memory default."""
    return SqlitePersistence(db_path) if db_path else NullPersistence()
