"""The shared state backend: PostgreSQL through psycopg 3, all of its SQL in this module.

Tables live in their own schema (`leadgenius_etl`), so a database shared with an orchestrator's
own tables (Dagster's has a `runs` table too) cannot clash. Job locks are session advisory locks,
held on a connection of their own for the whole run: they hold across machines, and a worker that
dies releases its lock with its connection.

Needs a session-level connection (direct, or a pooler in session mode): advisory locks do not
survive transaction pooling.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.errors import JobLocked, StateNotFound, StateUnavailable, UsageError
from etl.log import get_logger, redact_text
from etl.state.base import TABLES, Ledger, chunks
from etl.state.location import mask_url

SCHEMA = "leadgenius_etl"

# Each migration brings the schema from version N-1 to N, in one transaction, under an advisory lock
# (two machines opening a new database at once must not both create it).
MIGRATIONS: list[list[str]] = [
    [
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.leads (
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
            intent_at DOUBLE PRECISION,
            done_at DOUBLE PRECISION,
            run_id TEXT,
            PRIMARY KEY (target, client_id, key)
        )""",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.runs (
            run_id TEXT PRIMARY KEY,
            command TEXT NOT NULL,
            source TEXT,
            target TEXT,
            client_id TEXT,
            mode TEXT,
            dry_run INTEGER NOT NULL DEFAULT 0,
            job TEXT,
            started_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION,
            exit_code INTEGER,
            counts TEXT
        )""",
        f"CREATE INDEX IF NOT EXISTS runs_started_at ON {SCHEMA}.runs (started_at)",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.marks (
            job TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job, name)
        )""",
    ],
    # 2: undo — a per-run write log with before-images, undo statuses, mark history, runs.undo_of
    [
        f"""CREATE TABLE {SCHEMA}.writes (
            run_id TEXT NOT NULL,
            target TEXT NOT NULL,
            client_id TEXT NOT NULL,
            key TEXT NOT NULL,
            action TEXT NOT NULL,                    -- create | update
            lead_id TEXT,                            -- update: the lead planned; create: set by the outcome
            before_image TEXT,                       -- update: JSON {{field: value before the run, null = empty}}
            after_image TEXT,                        -- update: JSON {{field: value the run sent}}
            intent_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | done | failed
            written_at TEXT,                         -- the lead's updatedAt in the answer to our write
            done_at DOUBLE PRECISION,
            undo_run TEXT,                           -- the undo run that last acted on this row
            undo_status TEXT,                        -- deleting | restoring | deleted | restored | conflict | ...
            undo_written_at TEXT,                    -- the lead's updatedAt in the answer to the undo's PUT
            PRIMARY KEY (run_id, target, client_id, key)
        )""",
        f"CREATE INDEX writes_by_lead ON {SCHEMA}.writes (target, client_id, lead_id)",
        f"""CREATE TABLE {SCHEMA}.mark_history (
            run_id TEXT NOT NULL,
            job TEXT NOT NULL,
            name TEXT NOT NULL,
            before_value TEXT,                       -- the mark before this run moved it (NULL: none)
            after_value TEXT NOT NULL,
            set_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (run_id, job, name)
        )""",
        f"ALTER TABLE {SCHEMA}.runs ADD COLUMN undo_of TEXT",  # on an undo run: the run it undoes
        f"CREATE INDEX runs_undo_of ON {SCHEMA}.runs (undo_of)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

# Advisory locks take one signed 64-bit key per name (`lock_key`). Earlier builds used the two-int form
# (0x4C474554, hashtext(name)): a 32-bit hash, so two unrelated jobs could collide and block each other.
# Old and new keys do not exclude each other: upgrade every worker of a fleet together (README).
LOCK_NAMESPACE = "leadgenius-etl/advisory-lock/v2:"
MIGRATION_LOCK = "__schema_migration__"

# Intents and adopted leads arrive a batch at a time (up to tens of thousands): they are COPYed into a
# temporary table and merged with one statement (~2x executemany's rate).
STAGE = """
    CREATE TEMP TABLE IF NOT EXISTS lg_stage (
        ord BIGINT, target TEXT, client_id TEXT, key TEXT, status TEXT, lead_id TEXT, content_hash TEXT,
        payload TEXT, at DOUBLE PRECISION, run_id TEXT
    ) ON COMMIT DELETE ROWS"""
COPY_STAGE = ("COPY lg_stage (ord, target, client_id, key, status, lead_id, content_hash, payload, at, run_id)"
              " FROM STDIN")

MERGE_INTENTS = f"""
    INSERT INTO {SCHEMA}.leads AS l (target, client_id, key, status, content_hash, payload, intent_at, run_id)
    SELECT target, client_id, key, status, content_hash, payload, at, run_id FROM lg_stage ORDER BY ord
    ON CONFLICT (target, client_id, key) DO UPDATE SET
      status = excluded.status,
      payload = COALESCE(excluded.payload, l.payload),
      intent_at = COALESCE(l.intent_at, excluded.intent_at),
      run_id = excluded.run_id"""

# One statement per flush: the batch travels as arrays (one round trip, one plan), not one UPDATE each.
UPDATE_OUTCOMES = f"""
    UPDATE {SCHEMA}.leads AS l SET
      status = o.status, lead_id = COALESCE(o.lead_id, l.lead_id),
      content_hash = COALESCE(o.content_hash, l.content_hash),
      ours = GREATEST(l.ours, o.ours), error = o.error, done_at = o.done_at, attempts = l.attempts + 1
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::float8[],
                %s::text[], %s::text[], %s::text[])
         AS o(status, lead_id, content_hash, ours, error, done_at, target, client_id, key)
    WHERE l.target = o.target AND l.client_id = o.client_id AND l.key = o.key"""

MERGE_ADOPTED = f"""
    INSERT INTO {SCHEMA}.leads AS l (target, client_id, key, status, lead_id, content_hash, done_at, run_id)
    SELECT target, client_id, key, 'exists', lead_id, content_hash, at, run_id FROM lg_stage ORDER BY ord
    ON CONFLICT (target, client_id, key) DO UPDATE SET
      lead_id = excluded.lead_id,
      content_hash = COALESCE(excluded.content_hash, l.content_hash),
      status = CASE WHEN l.status IN ('pending_create', 'pending_update', 'failed')
                    THEN CASE WHEN l.ours = 1 OR l.status = 'pending_create'
                              THEN 'created' ELSE 'updated' END
                    ELSE l.status END,
      ours = CASE WHEN l.status = 'pending_create' THEN 1 ELSE l.ours END,
      done_at = excluded.done_at"""

INSERT_RUN = f"""
    INSERT INTO {SCHEMA}.runs (run_id, command, source, target, client_id, mode, dry_run, job, started_at, undo_of)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""

WRITE_INTENTS = f"""
    INSERT INTO {SCHEMA}.writes AS w
      (run_id, target, client_id, key, action, lead_id, before_image, after_image, intent_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (run_id, target, client_id, key) DO UPDATE SET
      action = excluded.action, lead_id = excluded.lead_id, before_image = excluded.before_image,
      after_image = excluded.after_image, intent_at = excluded.intent_at, status = 'pending',
      written_at = NULL, done_at = NULL"""

# The write-log row of the run that last recorded an intent for each key (leads.run_id).
WRITE_OUTCOMES = f"""
    UPDATE {SCHEMA}.writes AS w SET
      status = o.status, lead_id = COALESCE(o.lead_id, w.lead_id), written_at = COALESCE(o.written_at, w.written_at),
      done_at = o.done_at
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[], %s::text[])
         AS o(status, lead_id, written_at, done_at, target, client_id, key)
    JOIN {SCHEMA}.leads AS l ON l.target = o.target AND l.client_id = o.client_id AND l.key = o.key
    WHERE w.target = o.target AND w.client_id = o.client_id AND w.key = o.key AND w.run_id = l.run_id"""

RUN_WRITES = f"""
    SELECT w.*, l.payload AS payload FROM {SCHEMA}.writes w
    LEFT JOIN {SCHEMA}.leads l ON l.target = w.target AND l.client_id = w.client_id AND l.key = w.key
    WHERE w.run_id = %s ORDER BY w.intent_at, w.key"""

CLIENT_WRITES = f"""
    SELECT run_id, key, action, lead_id, status, written_at, undo_status, undo_written_at
    FROM {SCHEMA}.writes WHERE target = %s AND client_id = %s"""

WRITE_UNDO = f"""
    UPDATE {SCHEMA}.writes SET undo_run = %s, undo_status = %s, undo_written_at = COALESCE(%s, undo_written_at)
    WHERE run_id = %s AND target = %s AND client_id = %s AND key = %s"""

FORGET_DELETED = f"""
    UPDATE {SCHEMA}.leads SET status = 'undone', lead_id = NULL, content_hash = NULL, ours = 0
    WHERE target = %s AND client_id = %s AND lead_id = %s"""

FORGET_RESTORED = f"UPDATE {SCHEMA}.leads SET content_hash = NULL WHERE target = %s AND client_id = %s AND key = %s"

# Each run with the newest real (not dry) undo of it and that undo's exit code.
RUNS = f"""
    SELECT r.*,
      (SELECT u.run_id FROM {SCHEMA}.runs u WHERE u.undo_of = r.run_id AND u.dry_run = 0
       ORDER BY u.started_at DESC LIMIT 1) AS undone_by,
      (SELECT u.exit_code FROM {SCHEMA}.runs u WHERE u.undo_of = r.run_id AND u.dry_run = 0
       ORDER BY u.started_at DESC LIMIT 1) AS undo_exit
    FROM {SCHEMA}.runs r"""

MARK_HISTORY = f"""
    INSERT INTO {SCHEMA}.mark_history (run_id, job, name, before_value, after_value, set_at)
    VALUES (%s, %s, %s, (SELECT value FROM {SCHEMA}.marks WHERE job = %s AND name = %s), %s, %s)
    ON CONFLICT (run_id, job, name) DO UPDATE SET after_value = excluded.after_value, set_at = excluded.set_at"""

UPDATE_RUN = f"""
    UPDATE {SCHEMA}.runs SET ended_at=%s, exit_code=%s, counts=%s, target=COALESCE(%s, target),
      client_id=COALESCE(%s, client_id)
    WHERE run_id=%s"""

SET_MARK = f"""
    INSERT INTO {SCHEMA}.marks (job, name, value, updated_at) VALUES (%s, %s, %s, %s)
    ON CONFLICT (job, name) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at"""

TRY_LOCK = "SELECT pg_try_advisory_lock(%s::bigint)"
UNLOCK = "SELECT pg_advisory_unlock(%s::bigint)"
# pg_locks shows a bigint key as its high (classid) and low (objid) 32 bits, objsubid 1.
LOCK_HOLDER = """
    SELECT a.application_name, host(a.client_addr), a.backend_start
    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
    LIMIT 1"""

PRIMARY_KEYS = {"leads": ("target", "client_id", "key"), "runs": ("run_id",), "marks": ("job", "name"),
                "writes": ("run_id", "target", "client_id", "key"), "mark_history": ("run_id", "job", "name")}

F = TypeVar("F", bound=Callable[..., Any])


def _translated(func: F) -> F:
    """A lost or refused connection mid-run ends the run with exit 3 and one line, not a traceback.
    Whatever was committed stays; the next run resumes from it."""

    @functools.wraps(func)
    def wrapper(self: PostgresState, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except psycopg.OperationalError as exc:
            raise StateUnavailable(f"the state database {self.display} failed: {_first_line(exc)}") from None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise UsageError(
                f"the state database {self.display} refused a write: {_first_line(exc)} (the user needs to "
                f"read and write the schema {SCHEMA}, on the primary server, not a read-only replica)"
            ) from None

    return wrapper  # type: ignore[return-value]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact_text(" ".join(line.strip() for line in text.splitlines() if line.strip()))


Row = tuple[Any, ...]


def unique_rounds(rows: Iterable[Row], key: Callable[[Row], Any]) -> list[list[Row]]:
    """Split a batch into rounds in which each key appears once, keeping the order (pure).

    A batch is written with one set-based statement per round; a key given twice would be applied once
    (UPDATE ... FROM) or refused (INSERT ... ON CONFLICT). Round by round, the end state is the one that
    row-by-row writes (SQLite's) give. A batch without repeats, the usual case, is one round."""
    seen: dict[Any, int] = {}
    out: list[list[Row]] = []
    for row in rows:
        k = key(row)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(row)
    return out


def lock_key(name: str) -> int:
    """The advisory lock key of a job (or of the schema migration): a signed 64-bit integer from
    blake2b, the same in every process and on every machine (Python's hash() is salted per process)."""
    digest = hashlib.blake2b((LOCK_NAMESPACE + name).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_ids(key: int) -> tuple[int, int]:
    """(classid, objid) under which pg_locks shows the bigint advisory key `key`."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def application_name() -> str:
    """Shown to other workers as the holder of a lock: which machine and process."""
    return f"leadgenius-etl {socket.gethostname()} pid {os.getpid()}"[:63]


def connect(url: str, *, display: str) -> psycopg.Connection[Any]:
    """Connect with libpq, honouring every parameter of the URL (sslmode, sslrootcert, options, ...)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"the state URL {display} is not valid: {_first_line(exc)}") from None
    # Defaults a user's URL may override: fail in 10 s rather than hang on a dead host, and notice
    # a dead server (half-open TCP) within about a minute.
    defaults = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10",
                "keepalives_count": "3"}
    extra = {k: v for k, v in defaults.items() if k not in params}
    try:
        return psycopg.connect(make_conninfo(url, **extra), autocommit=True, application_name=application_name())
    except psycopg.OperationalError as exc:
        raise StateUnavailable(f"cannot connect to the state database {display}: {_first_line(exc)}") from None


class PostgresState(Ledger):
    """State in a PostgreSQL database, shared by every machine that names it."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__()
        self.url = url
        self.display = mask_url(url)
        self.conn = connect(url, display=self.display)
        try:
            self._migrate(create)
        except BaseException:
            self.conn.close()
            raise

    @_translated
    def _migrate(self, create: bool) -> None:
        # An up-to-date schema is only read: no DDL, no lock, so a user who may only read and write the
        # tables (not create them) can run jobs once an administrator's first run has created them.
        installed = self._installed_version()
        if installed == SCHEMA_VERSION:
            return
        if installed is None and not create:
            from etl.state import no_state

            raise StateNotFound(no_state(self.display, f"the database has no schema {SCHEMA}"))
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (lock_key(MIGRATION_LOCK),))
            try:
                self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            except psycopg.errors.InsufficientPrivilege as exc:
                raise UsageError(
                    f"the state database {self.display} refused to create the schema {SCHEMA}: {_first_line(exc)} "
                    f"(grant CREATE on the database, or create the schema {SCHEMA} for this user)"
                ) from None
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (version INTEGER NOT NULL)")
            current = self._installed_version() or 0  # again, under the lock: another machine may have migrated
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    self.conn.execute(statement)
            if current < SCHEMA_VERSION:
                self.conn.execute(f"DELETE FROM {SCHEMA}.schema_version")
                self.conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))

    def _installed_version(self) -> int | None:
        """The schema's version, None before the first run; UsageError when a newer release made it."""
        found = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.schema_version",)).fetchone()
        if not (found and found[0]):
            return None
        row = self.conn.execute(f"SELECT MAX(version) FROM {SCHEMA}.schema_version").fetchone()
        current = int(row[0] or 0) if row else 0
        if current > SCHEMA_VERSION:
            raise UsageError(
                f"the state database {self.display} has schema version {current}, newer than this "
                f"leadgenius-etl knows ({SCHEMA_VERSION}); upgrade leadgenius-etl"
            )
        return current

    @_translated
    def schema_version(self) -> int:
        row = self.conn.execute(f"SELECT MAX(version) FROM {SCHEMA}.schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def _close(self) -> None:
        self.conn.close()

    def _dicts(self, cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur]

    # --- leads -----------------------------------------------------------------

    @_translated
    def _index_rows(self, target: str, client_id: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            f"SELECT key, status, lead_id, content_hash FROM {SCHEMA}.leads WHERE target=%s AND client_id=%s",
            (target, client_id),
        ).fetchall()

    @_translated
    def _lead_rows(self, target: str, client_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.conn.execute(
            f"SELECT * FROM {SCHEMA}.leads WHERE target=%s AND client_id=%s", (target, client_id)))

    def _merge_staged(self, rows: Iterable[tuple[Any, ...]], merge: str) -> None:
        """Stage rows (target, client_id, key, ...) and merge them, all rounds in one transaction."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(STAGE)
            for n, batch in enumerate(unique_rounds(rows, lambda row: row[:3])):
                if n:
                    cur.execute("TRUNCATE lg_stage")
                with cur.copy(COPY_STAGE) as copy:
                    for ordinal, row in enumerate(batch):
                        copy.write_row((ordinal, *row))
                cur.execute(merge)

    @_translated
    def _write_intents(self, rows: list[tuple[Any, ...]]) -> None:
        # (target, client_id, key, status, hash, payload, at, run_id) -> the stage's columns
        self._merge_staged(((t, c, k, s, None, h, p, at, r) for t, c, k, s, h, p, at, r in rows), MERGE_INTENTS)

    @_translated
    def _write_outcomes(self, rows: list[tuple[Any, ...]], writes: list[tuple[Any, ...]]) -> None:
        # rows[i] and writes[i] are one outcome; a key repeated in the batch goes into a later round.
        # The commit does not wait for the WAL flush (synchronous_commit off, this transaction only):
        # outcomes may be lost in a server crash, as in a kill -9 before a flush, and the next run
        # finds those leads by reading the target. SQLite's synchronous=NORMAL makes the same trade;
        # intents, which must survive, keep the server's setting. The pipeline sends it all at once.
        indexed = [(i, *row[6:9]) for i, row in enumerate(rows)]  # (i, target, client_id, key)
        with self.conn.pipeline(), self.conn.transaction():
            self.conn.execute("SET LOCAL synchronous_commit = off")
            for batch in unique_rounds(indexed, lambda entry: entry[1:]):
                picked = [entry[0] for entry in batch]
                self.conn.execute(UPDATE_OUTCOMES, [list(col) for col in zip(*(rows[i] for i in picked), strict=True)])
                self.conn.execute(WRITE_OUTCOMES, [list(col) for col in zip(*(writes[i] for i in picked), strict=True)])

    @_translated
    def _write_adopted(self, rows: list[tuple[Any, ...]]) -> None:
        # (target, client_id, key, lead_id, hash, at, run_id) -> the stage's columns
        self._merge_staged(((t, c, k, None, lid, h, None, at, r) for t, c, k, lid, h, at, r in rows), MERGE_ADOPTED)

    # --- the write log -------------------------------------------------------------

    @_translated
    def _write_writes(self, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(WRITE_INTENTS, rows)

    @_translated
    def _run_writes(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.conn.execute(RUN_WRITES, (run_id,)))

    @_translated
    def _client_writes(self, target: str, client_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.conn.execute(CLIENT_WRITES, (target, client_id)))

    @_translated
    def _write_undo(self, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(WRITE_UNDO, rows)

    @_translated
    def _forget_undone(self, deleted: list[tuple[Any, ...]], restored: list[tuple[Any, ...]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            if deleted:
                cur.executemany(FORGET_DELETED, deleted)
            if restored:
                cur.executemany(FORGET_RESTORED, restored)

    # --- runs ------------------------------------------------------------------

    @_translated
    def _insert_run(self, row: tuple[Any, ...]) -> None:
        self.conn.execute(INSERT_RUN, row)

    @_translated
    def _update_run(self, row: tuple[Any, ...]) -> None:
        self.conn.execute(UPDATE_RUN, row)

    @_translated
    def _run_rows(self, limit: int) -> list[dict[str, Any]]:
        return self._dicts(self.conn.execute(f"{RUNS} ORDER BY r.started_at DESC LIMIT %s", (limit,)))

    @_translated
    def _get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._dicts(self.conn.execute(f"{RUNS} WHERE r.run_id = %s", (run_id,)))
        return rows[0] if rows else None

    @_translated
    def _last_writing_run(self) -> dict[str, Any] | None:
        rows = self._dicts(self.conn.execute(
            f"""{RUNS} WHERE r.dry_run = 0 AND r.command != 'undo'
                  AND EXISTS (SELECT 1 FROM {SCHEMA}.writes w WHERE w.run_id = r.run_id)
                ORDER BY r.started_at DESC LIMIT 1"""))
        return rows[0] if rows else None

    # --- high-water marks --------------------------------------------------------

    @_translated
    def get_mark(self, job: str, name: str) -> str | None:
        row = self.conn.execute(f"SELECT value FROM {SCHEMA}.marks WHERE job=%s AND name=%s", (job, name)).fetchone()
        return str(row[0]) if row else None

    @_translated
    def set_mark(self, job: str, name: str, value: str, run_id: str | None = None) -> None:
        now = time.time()
        with self.conn.transaction():
            if run_id is not None:
                self.conn.execute(MARK_HISTORY, (run_id, job, name, job, name, value, now))
            self.conn.execute(SET_MARK, (job, name, value, now))

    @_translated
    def delete_mark(self, job: str, name: str) -> None:
        self.conn.execute(f"DELETE FROM {SCHEMA}.marks WHERE job=%s AND name=%s", (job, name))

    @_translated
    def marks_set_by(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(self.conn.execute(
            f"SELECT job, name, before_value, after_value FROM {SCHEMA}.mark_history WHERE run_id=%s ORDER BY set_at",
            (run_id,)))

    # --- locks -------------------------------------------------------------------

    @contextmanager
    def job_lock(self, job: str) -> Iterator[None]:
        """A session advisory lock on a connection of its own, held until the run ends (or the process dies)."""
        conn = connect(self.url, display=self.display)
        key = lock_key(job)
        try:
            try:
                # The lock lives as long as this session: keep an idle-session timeout from ending it, and
                # have the server probe a silent client so a vanished machine's lock is freed in ~1 min.
                # (Through pg_settings: a server without one of these settings, e.g. before 14, skips it.)
                for name, value in (("idle_session_timeout", "0"), ("tcp_keepalives_idle", "30"),
                                    ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3")):
                    conn.execute("SELECT set_config(name, %s, false) FROM pg_settings WHERE name = %s", (value, name))
                row = conn.execute(TRY_LOCK, (key,)).fetchone()
                if not (row and row[0]):
                    holder = conn.execute(LOCK_HOLDER, lock_ids(key)).fetchone()
                    who = (holder[0] or "another process") if holder else "another process"
                    where = f" from {holder[1]}" if holder and holder[1] else ""
                    raise JobLocked(f"job {job!r} is already running ({who}{where}, state {self.display}); "
                                    "not starting a second run", holder=f"{who}{where}")
            except psycopg.OperationalError as exc:
                raise StateUnavailable(f"the state database {self.display} failed: {_first_line(exc)}") from None
            yield
            # Unlock explicitly: a lock that is no longer ours means the session was lost mid-run (a
            # server restart, a killed backend), and another run of the job may have overlapped this one.
            try:
                released = conn.execute(UNLOCK, (key,)).fetchone()
            except psycopg.Error:
                released = None
            if not (released and released[0]):
                get_logger(stage="state").warning(
                    "the job lock was lost during the run; another run of the job may have overlapped it",
                    job=job, state=self.display)
        finally:
            conn.close()

    # --- copying -----------------------------------------------------------------

    def dump(self, table: str) -> Iterator[tuple[Any, ...]]:
        columns = ", ".join(TABLES[table])
        try:
            with self.conn.transaction(), self.conn.cursor(name=f"dump_{table}") as cur:
                cur.itersize = 2000
                cur.execute(f"SELECT {columns} FROM {SCHEMA}.{table}")
                yield from cur
        except psycopg.OperationalError as exc:
            raise StateUnavailable(f"the state database {self.display} failed: {_first_line(exc)}") from None

    @_translated
    def load(self, data: Mapping[str, Iterable[tuple[Any, ...]]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.conn.transaction(), self.conn.cursor() as cur:
            for table, rows in data.items():
                columns = TABLES[table]
                keys = PRIMARY_KEYS[table]
                updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
                sql = (f"INSERT INTO {SCHEMA}.{table} ({', '.join(columns)})"
                       f" VALUES ({', '.join('%s' for _ in columns)})"
                       f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}")
                counts[table] = 0
                for chunk in chunks(rows, 2000):
                    cur.executemany(sql, chunk)
                    counts[table] += len(chunk)
        return counts

    @_translated
    def count(self, table: str) -> int:
        row = self.conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
        return int(row[0]) if row else 0
