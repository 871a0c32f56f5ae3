"""The embedded state backend: one SQLite file (WAL mode), all of its SQL in this module.

WAL keeps every committed transaction across a kill -9. Job locks are fcntl locks on a file next
to the database, so they hold between processes of one machine only (PostgreSQL's hold across
machines).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etl.errors import JobLocked, StateNotFound, UsageError
from etl.state.base import TABLES, Ledger, chunks

# Each migration brings the schema from version N-1 to N, in one transaction. Version 1 is the schema
# of the releases before versioning: its statements are IF NOT EXISTS, so a state.db made by one of
# them is stamped version 1 unchanged.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS leads (
            target TEXT NOT NULL,
            client_id TEXT NOT NULL,
            key TEXT NOT NULL,
            status TEXT NOT NULL,           -- pending_create | pending_update | created | updated | exists | failed
            lead_id TEXT,
            content_hash TEXT,
            payload TEXT,                   -- what was (or will be) POSTed, for repair
            ours INTEGER NOT NULL DEFAULT 0,-- 1 when a run of ours created the lead (or sent a create that may land)
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            intent_at REAL,
            done_at REAL,
            run_id TEXT,
            PRIMARY KEY (target, client_id, key)
        )""",
        """CREATE TABLE IF NOT EXISTS runs (
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
        )""",
        """CREATE TABLE IF NOT EXISTS marks (
            job TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (job, name)
        )""",
    ],
    # 2: undo — a per-run write log with before-images, undo statuses, mark history, runs.undo_of
    [
        """CREATE TABLE writes (
            run_id TEXT NOT NULL,
            target TEXT NOT NULL,
            client_id TEXT NOT NULL,
            key TEXT NOT NULL,
            action TEXT NOT NULL,                    -- create | update
            lead_id TEXT,                            -- update: the lead planned; create: set by the outcome
            before_image TEXT,                       -- update: JSON {field: value before the run, null = empty}
            after_image TEXT,                        -- update: JSON {field: value the run sent}
            intent_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | done | failed
            written_at TEXT,                         -- the lead's updatedAt in the answer to our write
            done_at REAL,
            undo_run TEXT,                           -- the undo run that last acted on this row
            undo_status TEXT,                        -- deleting | restoring | deleted | restored | conflict | ...
            undo_written_at TEXT,                    -- the lead's updatedAt in the answer to the undo's PUT
            PRIMARY KEY (run_id, target, client_id, key)
        )""",
        "CREATE INDEX writes_by_lead ON writes (target, client_id, lead_id)",
        """CREATE TABLE mark_history (
            run_id TEXT NOT NULL,
            job TEXT NOT NULL,
            name TEXT NOT NULL,
            before_value TEXT,                       -- the mark before this run moved it (NULL: none)
            after_value TEXT NOT NULL,
            set_at REAL NOT NULL,
            PRIMARY KEY (run_id, job, name)
        )""",
        "ALTER TABLE runs ADD COLUMN undo_of TEXT",  # on an undo run: the run it undoes
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

INSERT_INTENTS = """
    INSERT INTO leads (target, client_id, key, status, content_hash, payload, intent_at, run_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (target, client_id, key) DO UPDATE SET
      status = excluded.status,
      payload = COALESCE(excluded.payload, leads.payload),
      intent_at = COALESCE(leads.intent_at, excluded.intent_at),
      run_id = excluded.run_id"""

UPDATE_OUTCOMES = """
    UPDATE leads SET status=?, lead_id=COALESCE(?, lead_id), content_hash=COALESCE(?, content_hash),
      ours=MAX(ours, ?), error=?, done_at=?, attempts=attempts+1
    WHERE target=? AND client_id=? AND key=?"""

ADOPT = """
    INSERT INTO leads (target, client_id, key, status, lead_id, content_hash, done_at, run_id)
    VALUES (?, ?, ?, 'exists', ?, ?, ?, ?)
    ON CONFLICT (target, client_id, key) DO UPDATE SET
      lead_id = excluded.lead_id,
      content_hash = COALESCE(excluded.content_hash, leads.content_hash),
      status = CASE WHEN leads.status IN ('pending_create', 'pending_update', 'failed')
                    THEN CASE WHEN leads.ours = 1 OR leads.status = 'pending_create'
                              THEN 'created' ELSE 'updated' END
                    ELSE leads.status END,
      ours = CASE WHEN leads.status = 'pending_create' THEN 1 ELSE leads.ours END,
      done_at = excluded.done_at"""

INSERT_RUN = """
    INSERT INTO runs (run_id, command, source, target, client_id, mode, dry_run, job, started_at, undo_of)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

UPDATE_RUN = """
    UPDATE runs SET ended_at=?, exit_code=?, counts=?, target=COALESCE(?, target), client_id=COALESCE(?, client_id)
    WHERE run_id=?"""

WRITE_INTENTS = """
    INSERT INTO writes (run_id, target, client_id, key, action, lead_id, before_image, after_image, intent_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, target, client_id, key) DO UPDATE SET
      action = excluded.action, lead_id = excluded.lead_id, before_image = excluded.before_image,
      after_image = excluded.after_image, intent_at = excluded.intent_at, status = 'pending',
      written_at = NULL, done_at = NULL"""

WRITE_OUTCOMES = """
    UPDATE writes SET status = ?1, lead_id = COALESCE(?2, lead_id), written_at = COALESCE(?3, written_at),
      done_at = ?4
    WHERE target = ?5 AND client_id = ?6 AND key = ?7
      AND run_id = (SELECT run_id FROM leads WHERE target = ?5 AND client_id = ?6 AND key = ?7)"""

RUN_WRITES = """
    SELECT w.*, l.payload AS payload FROM writes w
    LEFT JOIN leads l ON l.target = w.target AND l.client_id = w.client_id AND l.key = w.key
    WHERE w.run_id = ? ORDER BY w.intent_at, w.key"""

CLIENT_WRITES = """
    SELECT run_id, key, action, lead_id, status, written_at, undo_status, undo_written_at
    FROM writes WHERE target = ? AND client_id = ?"""

WRITE_UNDO = """
    UPDATE writes SET undo_run = ?, undo_status = ?, undo_written_at = COALESCE(?, undo_written_at)
    WHERE run_id = ? AND target = ? AND client_id = ? AND key = ?"""

FORGET_DELETED = """
    UPDATE leads SET status = 'undone', lead_id = NULL, content_hash = NULL, ours = 0
    WHERE target = ? AND client_id = ? AND lead_id = ?"""

FORGET_RESTORED = "UPDATE leads SET content_hash = NULL WHERE target = ? AND client_id = ? AND key = ?"

# Each run with the newest real (not dry) undo of it and that undo's exit code.
RUNS = """
    SELECT r.*,
      (SELECT u.run_id FROM runs u WHERE u.undo_of = r.run_id AND u.dry_run = 0
       ORDER BY u.started_at DESC LIMIT 1) AS undone_by,
      (SELECT u.exit_code FROM runs u WHERE u.undo_of = r.run_id AND u.dry_run = 0
       ORDER BY u.started_at DESC LIMIT 1) AS undo_exit
    FROM runs r"""

MARK_HISTORY = """
    INSERT INTO mark_history (run_id, job, name, before_value, after_value, set_at)
    VALUES (?, ?, ?, (SELECT value FROM marks WHERE job = ? AND name = ?), ?, ?)
    ON CONFLICT (run_id, job, name) DO UPDATE SET after_value = excluded.after_value, set_at = excluded.set_at"""

SET_MARK = """
    INSERT INTO marks (job, name, value, updated_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (job, name) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at"""

class SqliteState(Ledger):
    """State in one SQLite file; one per working directory by default."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        super().__init__()
        self.path = path
        self.display = str(path)
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            else:
                self.db = self._open_existing(path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the state database {path}: {exc}") from None

    @staticmethod
    def _open_existing(path: Path) -> sqlite3.Connection:
        """A file that already holds state, opened without creating anything (mode=rw: sqlite3.connect
        would create a missing file); StateNotFound otherwise. Checked before the WAL pragma, which
        would write to any SQLite file."""
        from etl.state import no_state

        if not path.is_file():
            why = "no such file" if not path.exists() else "it is a directory" if path.is_dir() else "not a file"
            raise StateNotFound(no_state(str(path), why))
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None,
                             check_same_thread=False)
        try:
            # a state from before versioning has no schema_version table, but has leads
            found = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                               " AND name IN ('schema_version', 'leads')").fetchone()[0]
        except BaseException:
            db.close()
            raise
        if not found:
            db.close()
            raise StateNotFound(no_state(str(path), "the file holds no leadgenius-etl tables"))
        return db

    def _migrate(self) -> None:
        """Create or upgrade the schema on first use; one writer at a time (BEGIN IMMEDIATE)."""
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            if current > SCHEMA_VERSION:
                raise UsageError(
                    f"the state database {self.path} has schema version {current}, newer than this "
                    f"leadgenius-etl knows ({SCHEMA_VERSION}); upgrade leadgenius-etl"
                )
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    db.execute(statement)
            if current < SCHEMA_VERSION:
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _close(self) -> None:
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

    def _dicts(self, cur: sqlite3.Cursor) -> list[dict[str, Any]]:
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    # --- leads -----------------------------------------------------------------

    def _index_rows(self, target: str, client_id: str) -> list[tuple[Any, ...]]:
        return self.db.execute(
            "SELECT key, status, lead_id, content_hash FROM leads WHERE target=? AND client_id=?",
            (target, client_id),
        ).fetchall()

    def _lead_rows(self, target: str, client_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.db.execute("SELECT * FROM leads WHERE target=? AND client_id=?", (target, client_id)))

    def _write_intents(self, rows: list[tuple[Any, ...]]) -> None:
        with self._tx() as db:
            db.executemany(INSERT_INTENTS, rows)

    def _write_outcomes(self, rows: list[tuple[Any, ...]], writes: list[tuple[Any, ...]]) -> None:
        with self._tx() as db:
            db.executemany(UPDATE_OUTCOMES, rows)
            db.executemany(WRITE_OUTCOMES, writes)

    def _write_adopted(self, rows: list[tuple[Any, ...]]) -> None:
        with self._tx() as db:
            db.executemany(ADOPT, rows)

    # --- the write log -------------------------------------------------------------

    def _write_writes(self, rows: list[tuple[Any, ...]]) -> None:
        with self._tx() as db:
            db.executemany(WRITE_INTENTS, rows)

    def _run_writes(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.db.execute(RUN_WRITES, (run_id,)))

    def _client_writes(self, target: str, client_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.db.execute(CLIENT_WRITES, (target, client_id)))

    def _write_undo(self, rows: list[tuple[Any, ...]]) -> None:
        with self._tx() as db:
            db.executemany(WRITE_UNDO, rows)

    def _forget_undone(self, deleted: list[tuple[Any, ...]], restored: list[tuple[Any, ...]]) -> None:
        with self._tx() as db:
            db.executemany(FORGET_DELETED, deleted)
            db.executemany(FORGET_RESTORED, restored)

    # --- runs ------------------------------------------------------------------

    def _insert_run(self, row: tuple[Any, ...]) -> None:
        self.db.execute(INSERT_RUN, row)

    def _update_run(self, row: tuple[Any, ...]) -> None:
        self.db.execute(UPDATE_RUN, row)

    def _run_rows(self, limit: int) -> list[dict[str, Any]]:
        return self._dicts(self.db.execute(f"{RUNS} ORDER BY r.started_at DESC LIMIT ?", (limit,)))

    def _get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._dicts(self.db.execute(f"{RUNS} WHERE r.run_id = ?", (run_id,)))
        return rows[0] if rows else None

    def _last_writing_run(self) -> dict[str, Any] | None:
        rows = self._dicts(self.db.execute(
            f"""{RUNS} WHERE r.dry_run = 0 AND r.command != 'undo'
                  AND EXISTS (SELECT 1 FROM writes w WHERE w.run_id = r.run_id)
                ORDER BY r.started_at DESC LIMIT 1"""))
        return rows[0] if rows else None

    # --- high-water marks --------------------------------------------------------

    def get_mark(self, job: str, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM marks WHERE job=? AND name=?", (job, name)).fetchone()
        return str(row[0]) if row else None

    def set_mark(self, job: str, name: str, value: str, run_id: str | None = None) -> None:
        now = time.time()
        with self._tx() as db:
            if run_id is not None:
                db.execute(MARK_HISTORY, (run_id, job, name, job, name, value, now))
            db.execute(SET_MARK, (job, name, value, now))

    def delete_mark(self, job: str, name: str) -> None:
        self.db.execute("DELETE FROM marks WHERE job=? AND name=?", (job, name))

    def marks_set_by(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.db.execute(
            "SELECT job, name, before_value, after_value FROM mark_history WHERE run_id=? ORDER BY set_at", (run_id,)))

    # --- locks -------------------------------------------------------------------

    @contextmanager
    def job_lock(self, job: str) -> Iterator[None]:
        with file_lock(self.path, job):
            yield

    # --- copying -----------------------------------------------------------------

    def dump(self, table: str) -> Iterator[tuple[Any, ...]]:
        cur = self.db.execute(f"SELECT {', '.join(TABLES[table])} FROM {table}")  # names from TABLES only
        yield from cur

    def load(self, data: Mapping[str, Iterable[tuple[Any, ...]]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._tx() as db:
            for table, rows in data.items():
                columns = TABLES[table]
                sql = (f"INSERT OR REPLACE INTO {table} ({', '.join(columns)})"
                       f" VALUES ({', '.join('?' for _ in columns)})")
                counts[table] = 0
                for chunk in chunks(rows, 2000):
                    db.executemany(sql, chunk)
                    counts[table] += len(chunk)
        return counts

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"no table {table!r} in the state")
        return int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@contextmanager
def file_lock(state_path: Path, job: str) -> Iterator[None]:
    """An fcntl lock on <state dir>/<job>.lock holding the owner's pid; released when the process dies.

    The holder removes the file before it lets go, so no lock file outlives its run (undo took one per
    run). Removing it while still holding it, not after: after, another process may already hold a lock
    on it. A process that opened the file just before it was removed gets its lock on an orphan: it sees
    the path no longer names that file and starts over on a new one.
    """
    lock_dir = state_path.parent
    lock_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in job)
    path = lock_dir / f"{safe}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise JobLocked(f"job {job!r} is already running ({who}); not starting a second run",
                            holder=who) from None
        if _names(path, fd):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _names(path: Path, fd: int) -> bool:
    """`path` still names the file open as `fd` (its last holder has not removed it meanwhile)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)
