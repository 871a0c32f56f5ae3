"""The state interface every backend implements: the ledger, runs, marks and job locks.

The ledger holds, per (target, client, key), the intent before a request and the outcome after
it. Intents are written (and committed) before any request goes out; outcomes are buffered and
written in batches, so the database round trip is paid once per batch, not once per lead. A
crash loses at most the outcomes not yet flushed, and those leads are found again by the next
run's read of the target before anything is re-sent.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

import polars as pl

from etl.errors import JobLocked

LEDGER_COLUMNS = {
    "_key": pl.String,
    "_l_status": pl.String,
    "_l_lead_id": pl.String,
    "_l_hash": pl.String,
}

# The outcome buffer is written when it holds this many outcomes or is this old.
FLUSH_EVERY = 200
FLUSH_AFTER_S = 0.5

# (key, pending status, content hash, payload json)
Intent = tuple[str, str, str, str | None]
# (key, create | update | delete, lead id, before-image json, after-image json): one row of a run's write log
WriteIntent = tuple[str, str, str | None, str | None, str | None]
# (run id, target, client id, key, undo status, updatedAt of the undo's own write)
UndoMark = tuple[str, str, str, str, str, str | None]

# What `state migrate` copies, table by table, in this column order (both backends share it).
TABLES: dict[str, tuple[str, ...]] = {
    "leads": ("target", "client_id", "key", "status", "lead_id", "content_hash", "payload", "ours", "attempts",
              "error", "intent_at", "done_at", "run_id"),
    "runs": ("run_id", "command", "source", "target", "client_id", "mode", "dry_run", "job", "started_at",
             "ended_at", "exit_code", "counts", "undo_of"),
    "marks": ("job", "name", "value", "updated_at"),
    "writes": ("run_id", "target", "client_id", "key", "action", "lead_id", "before_image", "after_image",
               "intent_at", "status", "written_at", "done_at", "undo_run", "undo_status", "undo_written_at"),
    "mark_history": ("run_id", "job", "name", "before_value", "after_value", "set_at"),
}


@dataclass(frozen=True)
class Outcome:
    key: str
    status: str
    lead_id: str | None = None
    content_hash: str | None = None
    error: str | None = None
    written_at: str | None = None  # the lead's updatedAt in the answer to our write (undo's conflict check)


def chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


class Ledger(ABC):
    """One state database (SQLite file or PostgreSQL). Build it with `etl.state.open_state(settings)`."""

    display: str
    """Where the state lives, safe to print (a URL's password masked)."""

    def __init__(self) -> None:
        self._pending: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()
        self._run_locks: dict[str, ExitStack] = {}

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            try:
                for stack in self._run_locks.values():  # a run that never reached finish_run
                    stack.close()
            finally:
                self._run_locks.clear()
                self._close()

    # --- leads -----------------------------------------------------------------

    def index(self, target: str, client_id: str) -> pl.DataFrame:
        """What earlier runs recorded for this client: key, status, lead id, content hash."""
        return pl.DataFrame(self._index_rows(target, client_id), schema=LEDGER_COLUMNS, orient="row")

    def rows(self, target: str, client_id: str, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = set(keys) if keys is not None else None
        return [r for r in self._lead_rows(target, client_id) if wanted is None or r["key"] in wanted]

    def record_intents(self, target: str, client_id: str, run_id: str, intents: Iterable[Intent]) -> None:
        """(key, pending status, content hash, payload json) — durable before any request goes out."""
        now = time.time()
        self.flush()
        self._write_intents([(target, client_id, k, s, h, p, now, run_id) for k, s, h, p in intents])

    def record_outcome(self, target: str, client_id: str, outcome: Outcome, *, ours: bool = False) -> None:
        """Buffered; flushed every FLUSH_EVERY outcomes or FLUSH_AFTER_S seconds."""
        self._pending.append(
            (outcome.status, outcome.lead_id, outcome.content_hash, int(ours), outcome.error, time.time(),
             target, client_id, outcome.key, outcome.written_at)
        )
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        # The write-log row of each outcome is the one of the run that last recorded an intent for
        # the key (leads.run_id): reconcile's repairs (a new lead id) land on the run they repair.
        self._write_outcomes(
            [row[:9] for row in batch],
            [("failed" if st == "failed" else "done", lid, written, now, t, c, k)
             for st, lid, _h, _o, _e, now, t, c, k, written in batch],
        )
        self._last_flush = time.monotonic()

    def adopt(self, target: str, client_id: str, rows: Iterable[tuple[str, str, str | None]], run_id: str) -> None:
        """Record leads found in the target (key, lead id, hash) without sending anything."""
        now = time.time()
        self.flush()
        self._write_adopted([(target, client_id, k, lid, h, now, run_id) for k, lid, h in rows])

    # --- the write log (what `undo` reverts) --------------------------------------

    def record_writes(self, target: str, client_id: str, run_id: str, writes: Iterable[WriteIntent]) -> None:
        """A run's write log: durable before any request goes out, so an undo knows what a killed run
        may have written. An update keeps the before-image of the fields it PUTs (from the read that
        planned it) and what it PUTs; a re-recorded key of the same run is replaced (back to pending)."""
        now = time.time()
        self._write_writes([(run_id, target, client_id, k, a, lid, b, af, now) for k, a, lid, b, af in writes])

    def run_writes(self, run_id: str) -> list[dict[str, Any]]:
        """Every write-log row of a run (TABLES["writes"] columns) plus `payload`: the create payload
        the ledger keeps for its key."""
        self.flush()
        return self._run_writes(run_id)

    def client_writes(self, target: str, client_id: str) -> list[dict[str, Any]]:
        """Every run's writes to one client: run_id, key, action, lead_id, status, written_at,
        undo_status, undo_written_at."""
        self.flush()
        return self._client_writes(target, client_id)

    def record_undo(self, undo_run: str, rows: Iterable[UndoMark]) -> None:
        """What an undo did (or is about to do) to each write; a given updatedAt replaces the stored one."""
        self._write_undo([(undo_run, st, written, run_id, t, c, k) for run_id, t, c, k, st, written in rows])

    def forget_undone(self, target: str, client_id: str, deleted_ids: Iterable[str],
                      restored_keys: Iterable[str]) -> None:
        """The per-key state forgets what an undo reverted: a deleted lead is no longer ours nor
        acknowledged (reconcile must not re-create it); a restored lead's source hash is dropped, so
        the next upsert compares it with the target again instead of skipping it as unchanged."""
        self.flush()
        self._forget_undone([(target, client_id, lid) for lid in deleted_ids],
                            [(target, client_id, k) for k in restored_keys])

    # --- runs ------------------------------------------------------------------

    def start_run(self, *, command: str, source: str | None, target: str | None, client_id: str | None,
                  mode: str | None, dry_run: bool, job: str | None = None, undo_of: str | None = None) -> str:
        """Record a run as started, holding its run lock (`run_lock`) until `finish_run` or `close`.

        The lock is taken before the row exists: a runs row without an end whose lock is free is a
        run that died (kill -9 frees fcntl locks and ends a PostgreSQL session); one whose lock is
        held is still running, and `undo` leaves it alone."""
        run_id = new_run_id()
        stack = ExitStack()
        stack.enter_context(self.run_lock(run_id))
        try:
            self._insert_run((run_id, command, source, target, client_id, mode, int(dry_run), job, time.time(),
                              undo_of))
        except BaseException:
            stack.close()
            raise
        self._run_locks[run_id] = stack
        return run_id

    def finish_run(self, run_id: str, *, exit_code: int, counts: dict[str, Any],
                   target: str | None = None, client_id: str | None = None) -> None:
        """Record the run's end and release its run lock. The one writer of the runs row's exit code:
        call it once, after the last step that can change the run's verdict."""
        try:
            self.flush()
            self._update_run((time.time(), exit_code, json.dumps(counts), target, client_id, run_id))
        finally:
            stack = self._run_locks.pop(run_id, None)
            if stack is not None:
                stack.close()

    def run_lock(self, run_id: str) -> AbstractContextManager[None]:
        """The lock a run holds from its start to its end (a job lock named `run:<id>`)."""
        return self.job_lock(f"run:{run_id}")

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs; each also carries `undone_by` (the newest real undo of it, or None),
        `undo_exit` (that undo's exit code: 0 = fully undone) and `status`: `ended`, `running`, or
        `stopped` (no end recorded and nobody holds its run lock: killed, or its machine lost)."""
        rows = [_decoded(rec) for rec in self._run_rows(limit)]
        for row in rows:
            row["status"] = "ended" if row.get("ended_at") is not None else (
                "running" if self._run_held(row["run_id"]) else "stopped")
        return rows

    def _run_held(self, run_id: str) -> bool:
        try:
            with self.run_lock(run_id):
                return False
        except JobLocked:
            return True

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rec = self._get_run(run_id)
        return _decoded(rec) if rec else None

    def last_writing_run(self) -> dict[str, Any] | None:
        """The newest real run (not a dry run, not an undo) with a write-log row: `undo --last`."""
        rec = self._last_writing_run()
        return _decoded(rec) if rec else None

    # --- high-water marks --------------------------------------------------------

    @abstractmethod
    def get_mark(self, job: str, name: str) -> str | None: ...

    @abstractmethod
    def set_mark(self, job: str, name: str, value: str, run_id: str | None = None) -> None:
        """Move a mark; with `run_id` also remember (mark_history) where it was before that run first
        moved it, so an undo of the run can move it back."""

    @abstractmethod
    def delete_mark(self, job: str, name: str) -> None: ...

    @abstractmethod
    def marks_set_by(self, run_id: str) -> list[dict[str, Any]]:
        """The marks a run moved: job, name, before_value (None: there was none), after_value."""

    # --- locks -------------------------------------------------------------------

    @abstractmethod
    def job_lock(self, job: str) -> AbstractContextManager[None]:
        """One run per job at a time: a second overlapping run raises JobLocked at once, touching nothing."""

    # --- schema and copying --------------------------------------------------------

    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def dump(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of a table, columns in TABLES order (for `state migrate`)."""

    @abstractmethod
    def load(self, data: Mapping[str, Iterable[tuple[Any, ...]]]) -> dict[str, int]:
        """Insert rows dumped from another state (TABLES order), all tables in one transaction; a key
        already present is replaced. Returns the rows written per table."""

    @abstractmethod
    def count(self, table: str) -> int: ...

    def is_empty(self) -> bool:
        return all(self.count(table) == 0 for table in TABLES)

    # --- what each backend writes in its own SQL ------------------------------------

    @abstractmethod
    def _index_rows(self, target: str, client_id: str) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _lead_rows(self, target: str, client_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _write_intents(self, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _write_outcomes(self, rows: list[tuple[Any, ...]], writes: list[tuple[Any, ...]]) -> None:
        """`rows` for UPDATE_OUTCOMES; `writes` (status, lead id, written_at, done_at, target, client id,
        key) for the write-log row of the run that last recorded an intent for the key."""

    @abstractmethod
    def _write_adopted(self, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _write_writes(self, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _run_writes(self, run_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _client_writes(self, target: str, client_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _write_undo(self, rows: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _forget_undone(self, deleted: list[tuple[Any, ...]], restored: list[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def _get_run(self, run_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _last_writing_run(self) -> dict[str, Any] | None: ...

    @abstractmethod
    def _insert_run(self, row: tuple[Any, ...]) -> None: ...

    @abstractmethod
    def _update_run(self, row: tuple[Any, ...]) -> None: ...

    @abstractmethod
    def _run_rows(self, limit: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _close(self) -> None: ...


def _decoded(rec: dict[str, Any]) -> dict[str, Any]:
    rec["counts"] = json.loads(rec["counts"]) if rec["counts"] else None
    return rec
