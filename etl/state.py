"""The ledger: per (target, client, key) the intent before a request and the outcome after it.

SQLite in WAL mode: a kill -9 loses at most the outcomes not yet flushed, and those leads are
found again by the next run's read of the target before anything is re-sent.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from etl.errors import JobLocked, UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS leads (
    target TEXT NOT NULL,
    client_id TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,           -- pending_create | pending_update | created | updated | exists | failed
    lead_id TEXT,
    content_hash TEXT,
    payload TEXT,                   -- what was (or will be) POSTed, for repair
    ours INTEGER NOT NULL DEFAULT 0,-- 1 when a run of ours created the lead
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    intent_at REAL,
    done_at REAL,
    run_id TEXT,
    PRIMARY KEY (target, client_id, key)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    source TEXT,
    target TEXT,
    client_id TEXT,
    mode TEXT,
    dry_run INTEGER NOT NULL DEFAULT 0,
    job TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    exit_code INTEGER,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS marks (
    job TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job, name)
);
"""

LEDGER_COLUMNS = {
    "_key": pl.String,
    "_l_status": pl.String,
    "_l_lead_id": pl.String,
    "_l_hash": pl.String,
}


@dataclass(frozen=True)
class Outcome:
    key: str
    status: str
    lead_id: str | None = None
    content_hash: str | None = None
    error: str | None = None


class Ledger:
    """State database; one per working directory by default (LEADGENIUS_ETL_STATE)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the state database {path}: {exc}") from None
        self._pending: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- leads -----------------------------------------------------------------

    def index(self, target: str, client_id: str) -> pl.DataFrame:
        """What earlier runs recorded for this client: key, status, lead id, content hash."""
        rows = self.db.execute(
            "SELECT key, status, lead_id, content_hash FROM leads WHERE target=? AND client_id=?",
            (target, client_id),
        ).fetchall()
        return pl.DataFrame(rows, schema=LEDGER_COLUMNS, orient="row")

    def rows(self, target: str, client_id: str, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM leads WHERE target=? AND client_id=?", (target, client_id))
        names = [d[0] for d in cur.description]
        wanted = set(keys) if keys is not None else None
        return [r for r in (dict(zip(names, row, strict=True)) for row in cur) if wanted is None or r["key"] in wanted]

    def record_intents(
        self, target: str, client_id: str, run_id: str, intents: Iterable[tuple[str, str, str, str | None]]
    ) -> None:
        """(key, pending status, content hash, payload json) — durable before any request goes out."""
        now = time.time()
        self.flush()
        with self._tx() as db:
            db.executemany(
                """INSERT INTO leads (target, client_id, key, status, content_hash, payload, intent_at, run_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (target, client_id, key) DO UPDATE SET
                     status = excluded.status,
                     payload = COALESCE(excluded.payload, leads.payload),
                     intent_at = COALESCE(leads.intent_at, excluded.intent_at),
                     run_id = excluded.run_id""",
                [(target, client_id, k, s, h, p, now, run_id) for k, s, h, p in intents],
            )

    def record_outcome(self, target: str, client_id: str, outcome: Outcome, *, ours: bool = False) -> None:
        """Buffered; flushed every 200 outcomes or half a second (WAL keeps flushed ones across kill -9)."""
        self._pending.append(
            (outcome.status, outcome.lead_id, outcome.content_hash, int(ours), outcome.error, time.time(),
             target, client_id, outcome.key)
        )
        if len(self._pending) >= 200 or time.monotonic() - self._last_flush > 0.5:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        with self._tx() as db:
            db.executemany(
                """UPDATE leads SET status=?, lead_id=COALESCE(?, lead_id), content_hash=COALESCE(?, content_hash),
                     ours=MAX(ours, ?), error=?, done_at=?, attempts=attempts+1
                   WHERE target=? AND client_id=? AND key=?""",
                batch,
            )
        self._last_flush = time.monotonic()

    def adopt(self, target: str, client_id: str, rows: Iterable[tuple[str, str, str | None]], run_id: str) -> None:
        """Record leads found in the target (key, lead id, hash) without sending anything."""
        now = time.time()
        self.flush()
        with self._tx() as db:
            db.executemany(
                """INSERT INTO leads (target, client_id, key, status, lead_id, content_hash, done_at, run_id)
                   VALUES (?, ?, ?, 'exists', ?, ?, ?, ?)
                   ON CONFLICT (target, client_id, key) DO UPDATE SET
                     lead_id = excluded.lead_id,
                     content_hash = COALESCE(excluded.content_hash, leads.content_hash),
                     status = CASE WHEN leads.status IN ('pending_create', 'pending_update', 'failed')
                                   THEN CASE WHEN leads.ours = 1 OR leads.status = 'pending_create'
                                             THEN 'created' ELSE 'updated' END
                                   ELSE leads.status END,
                     ours = CASE WHEN leads.status = 'pending_create' THEN 1 ELSE leads.ours END,
                     done_at = excluded.done_at""",
                [(target, client_id, k, lid, h, now, run_id) for k, lid, h in rows],
            )

    # --- runs ------------------------------------------------------------------

    def start_run(self, *, command: str, source: str | None, target: str | None, client_id: str | None,
                  mode: str | None, dry_run: bool, job: str | None = None) -> str:
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        self.db.execute(
            "INSERT INTO runs (run_id, command, source, target, client_id, mode, dry_run, job, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, command, source, target, client_id, mode, int(dry_run), job, time.time()),
        )
        return run_id

    def finish_run(self, run_id: str, *, exit_code: int, counts: dict[str, Any],
                   target: str | None = None, client_id: str | None = None) -> None:
        self.flush()
        self.db.execute(
            "UPDATE runs SET ended_at=?, exit_code=?, counts=?, target=COALESCE(?, target),"
            " client_id=COALESCE(?, client_id) WHERE run_id=?",
            (time.time(), exit_code, json.dumps(counts), target, client_id, run_id),
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        out = []
        for row in cur:
            rec = dict(zip(names, row, strict=True))
            rec["counts"] = json.loads(rec["counts"]) if rec["counts"] else None
            out.append(rec)
        return out

    # --- high-water marks --------------------------------------------------------

    def get_mark(self, job: str, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM marks WHERE job=? AND name=?", (job, name)).fetchone()
        return str(row[0]) if row else None

    def set_mark(self, job: str, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO marks (job, name, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job, name) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
            (job, name, value, time.time()),
        )


@contextmanager
def job_lock(state_path: Path, job: str) -> Iterator[None]:
    """One run per job at a time: a second overlapping run exits at once, touching nothing."""
    lock_dir = state_path.parent
    lock_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in job)
    path = lock_dir / f"{safe}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise JobLocked(f"job {job!r} is already running (pid {holder}); not starting a second run") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
