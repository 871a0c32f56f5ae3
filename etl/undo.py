"""Undo a run: delete exactly the leads it created, put back exactly the fields it changed.

`plan_undo` is pure: from the run's write log (the ledger's `writes`, with the before-image of every
field an update overwrote) and one read of the client it decides per write: delete, restore,
conflict (the lead changed after the run's own write), already gone, already reverted, unclearable
(the field was empty before and the API cannot empty a field: null and "" are refused, quirk 3) or
never written. `undo_run` acts on that plan through the loader's client (same pacing, retries and
429 handling): batch deletes of 50 ids (seed 002's advice), one PUT per restored lead. Batch
answers are not trusted (the batch POST's 201 already lies, quirk 1): it re-reads the client to
the end, deletes again what is still there and PUTs again what did not stick. Restores go out as
batch PUTs of 50 (`{"leads": [...]}`), one lead per PUT when a batch is refused and for repairs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import polars as pl

from etl.config import Settings
from etl.errors import ApiError, EtlError, JobLocked, RunStillRunning, UsageError
from etl.fields import LEAD_FIELDS
from etl.load.api import LeadGeniusApi
from etl.load.deletes import VERIFY_ROUNDS, batches, delete_in_batches, each
from etl.log import get_logger
from etl.reconcile import CLOCK_SLACK_S, epoch, read_target
from etl.report import Progress, write_json_atomic
from etl.state import Ledger, open_state

RESTORE_BATCH = 50  # the batch PUT, same size: one bad item fails a batch whole, then its leads go one by one
# A killed run's last creates may land after its last recorded outcome: the outcomes are flushed
# every half second and a request in flight lands up to one request timeout later.
IN_FLIGHT_SLACK_S = 5.0

Action = Literal["delete", "restore", "conflict", "already_gone", "reverted", "unclearable", "not_written",
                 "cannot_restore"]
# What an undo leaves for good: an undo that finds every write of a run in one of these has nothing to do.
TERMINAL = frozenset({"deleted", "restored", "already_gone", "reverted", "not_written"})
ITEM_FIELDS = tuple(f for f in LEAD_FIELDS if f != "client_id")


T = TypeVar("T")


# --- the plan (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerContext:
    """What the ledger says about the client's leads beyond the run being undone."""

    claimed: dict[str, str] = field(default_factory=dict)
    """lead id -> the other run that created it (never taken for this run's in-doubt create)."""
    neutral: dict[str, frozenset[str]] = field(default_factory=dict)
    """lead id -> updatedAt stamps our undos wrote (a restore puts a lead back; not someone's change)."""
    written_by: dict[str, dict[str, str]] = field(default_factory=dict)
    """lead id -> {updatedAt our write returned: run id}, to name the run a conflict comes from."""


def ledger_context(client_writes: Iterable[dict[str, Any]], run_id: str) -> LedgerContext:
    claimed: dict[str, str] = {}
    neutral: dict[str, set[str]] = {}
    written_by: dict[str, dict[str, str]] = {}
    for row in client_writes:
        lead_id = row.get("lead_id")
        if not lead_id:
            continue
        if row["run_id"] != run_id:
            if row.get("action") == "create":
                claimed.setdefault(lead_id, row["run_id"])
            if row.get("written_at"):
                written_by.setdefault(lead_id, {})[row["written_at"]] = row["run_id"]
        if row.get("undo_written_at"):
            neutral.setdefault(lead_id, set()).add(row["undo_written_at"])
    return LedgerContext(claimed, {k: frozenset(v) for k, v in neutral.items()}, written_by)


@dataclass
class UndoItem:
    """The decision for one write of the run (one key of one client)."""

    run_id: str
    target: str
    client_id: str
    key: str
    kind: str  # what the run did: create | update
    action: Action
    lead_ids: tuple[str, ...] = ()  # delete: every lead of the run for this key (a lost answer's double too)
    email: str | None = None
    restore: dict[str, str] = field(default_factory=dict)  # field -> value before the run
    clear: tuple[str, ...] = ()  # fields empty before the run; the API cannot empty them again
    wrote: dict[str, Any] = field(default_factory=dict)
    now: dict[str, Any] = field(default_factory=dict)
    updated_at: str | None = None
    written_at: str | None = None
    changed_by_run: str | None = None
    forced: bool = False
    reason: str | None = None
    written: str | None = None  # updatedAt the undo's own restore PUT returned

    @property
    def lead_id(self) -> str | None:
        return self.lead_ids[0] if self.lead_ids else None

    def conflict_entry(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id, "email": self.email, "run_did": self.kind, "wrote": self.wrote,
            "now": self.now, "written_at": self.written_at, "updated_at": self.updated_at,
            "changed_by_run": self.changed_by_run, "forced": self.forced,
        }


def _changed_since(lead: dict[str, Any], stamp: str | None, ctx: LedgerContext) -> bool:
    """The lead was written after `stamp` by someone other than our undos."""
    updated = lead.get("updatedAt")
    if not stamp or not updated or updated == stamp:
        return False
    if updated in ctx.neutral.get(str(lead["id"]), frozenset()):
        return False
    return epoch(updated) > epoch(stamp)


def _differences(wrote: dict[str, Any], lead: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the run wrote, what is there now) for the fields that differ."""
    fields = [f for f in ITEM_FIELDS if wrote.get(f) != lead.get(f)]
    return {f: wrote.get(f) for f in fields}, {f: lead.get(f) for f in fields}


def plan_undo(
    writes: list[dict[str, Any]],
    snapshot: pl.DataFrame,
    ctx: LedgerContext,
    *,
    window_end: float,
    force: bool = False,
) -> list[UndoItem]:
    """Decide per write of one run on one client what undoing it takes (pure).

    `writes`: the run's write-log rows; `snapshot`: every lead of the client (`id`, `createdAt`,
    `updatedAt`, the lead fields, `_key`); `window_end`: no lead created after this (Unix seconds)
    can be the run's. A create whose outcome is unknown is found by e-mail among leads created
    after its intent and claimed by no other run of ours.
    """
    keys = {w["key"] for w in writes}
    ids = {w["lead_id"] for w in writes if w.get("lead_id")}
    relevant = snapshot.filter(pl.col("_key").is_in(list(keys)) | pl.col("id").is_in(list(ids))).to_dicts()
    by_id = {str(lead["id"]): lead for lead in relevant}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for lead in relevant:
        by_key.setdefault(str(lead["_key"]), []).append(lead)
    items = []
    for w in writes:
        base = UndoItem(run_id=w["run_id"], target=w["target"], client_id=w["client_id"], key=w["key"],
                        kind=w["action"], action="not_written", email=w["key"], written_at=w.get("written_at"))
        if w["action"] == "create":
            items.append(_plan_create(base, w, by_id, by_key.get(w["key"], []), ctx, window_end, force))
        elif w["action"] == "delete":
            items.append(_plan_delete(base, w, by_id))
        else:
            items.append(_plan_update(base, w, by_id.get(w.get("lead_id") or ""), ctx, force))
    return items


def _plan_create(
    item: UndoItem, w: dict[str, Any], by_id: dict[str, dict[str, Any]], same_key: list[dict[str, Any]],
    ctx: LedgerContext, window_end: float, force: bool,
) -> UndoItem:
    recorded = w.get("lead_id")
    low = float(w["intent_at"]) - CLOCK_SLACK_S
    leads = [by_id[recorded]] if recorded in by_id else []
    leads += [
        lead for lead in same_key
        if lead["id"] != recorded and lead["id"] not in ctx.claimed
        and low <= epoch(lead.get("createdAt")) <= window_end
    ]
    if not leads:
        item.action = "already_gone" if recorded else "not_written"
        item.lead_ids = (recorded,) if recorded else ()
        return item
    item.lead_ids = tuple(str(lead["id"]) for lead in leads)
    item.email = leads[0].get("email") or item.email
    changed = [
        lead for lead in leads
        if _changed_since(lead, w.get("written_at") if lead["id"] == recorded else lead.get("createdAt"), ctx)
    ]
    if not changed:
        item.action = "delete"
        return item
    lead = changed[0]
    payload = json.loads(w["payload"]) if w.get("payload") else {}
    item.wrote, item.now = _differences(payload, lead)
    item.updated_at = lead.get("updatedAt")
    item.changed_by_run = ctx.written_by.get(str(lead["id"]), {}).get(str(lead.get("updatedAt")))
    item.action, item.forced = ("delete", True) if force else ("conflict", False)
    return item


def _plan_delete(item: UndoItem, w: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> UndoItem:
    """A lead the run deleted (a HubSpot sync's on_archive = "delete"). Still there: the delete never
    happened. Gone: no API call brings a deleted lead back, so the undo says which it cannot restore."""
    item.lead_ids = (w["lead_id"],) if w.get("lead_id") else ()
    if w.get("lead_id") in by_id:
        item.action = "not_written"
        return item
    item.action = "cannot_restore"
    item.reason = "the run deleted it (on_archive = \"delete\"); the API cannot bring a deleted lead back"
    return item


def _plan_update(
    item: UndoItem, w: dict[str, Any], lead: dict[str, Any] | None, ctx: LedgerContext, force: bool
) -> UndoItem:
    item.lead_ids = (w["lead_id"],) if w.get("lead_id") else ()
    if lead is None:
        item.action = "already_gone"
        return item
    item.email = lead.get("email") or item.email
    before: dict[str, Any] = json.loads(w["before_image"] or "{}")
    after: dict[str, Any] = json.loads(w["after_image"] or "{}")
    pending = {f: before.get(f) for f in after if lead.get(f) != before.get(f)}
    if not pending:
        item.action = "reverted" if w["status"] == "done" else "not_written"
        return item
    if w["status"] == "done" and w.get("written_at"):
        changed = _changed_since(lead, w["written_at"], ctx)
    else:
        # The PUT's answer is unknown: only a field holding neither our value nor the old one
        # says someone else wrote it.
        changed = any(lead.get(f) not in (after[f], before.get(f)) for f in after)
    item.updated_at = lead.get("updatedAt")
    if changed:
        item.wrote = dict(after)
        item.now = {f: lead.get(f) for f in after}
        item.changed_by_run = ctx.written_by.get(str(lead["id"]), {}).get(str(lead.get("updatedAt")))
        if not force:
            item.action = "conflict"
            return item
        item.forced = True
    item.restore = {f: str(v) for f, v in pending.items() if v is not None}
    item.clear = tuple(f for f, v in pending.items() if v is None)
    item.now = item.now or {f: lead.get(f) for f in item.clear}
    item.action = "restore" if item.restore else "unclearable"
    return item


def window_end(writes: list[dict[str, Any]], run: dict[str, Any], timeout_s: float) -> float:
    """The latest createdAt a lead of the run can carry (pure)."""
    times = [float(t) for w in writes for t in (w.get("intent_at"), w.get("done_at")) if t is not None]
    if run.get("ended_at"):
        times.append(float(run["ended_at"]))
    return max(times, default=0.0) + timeout_s + IN_FLIGHT_SLACK_S + CLOCK_SLACK_S


# --- the report ------------------------------------------------------------------------------------


@dataclass
class UndoCounts:
    deleted: int = 0
    restored: int = 0
    conflicts: int = 0
    failed: int = 0
    already_gone: int = 0
    already_reverted: int = 0
    unclearable: int = 0
    not_written: int = 0
    cannot_restore: int = 0  # leads the run deleted: an undo cannot bring them back


@dataclass
class UndoReport:
    dry_run: bool
    run_id: str
    force: bool = False
    undo_run_id: str | None = None
    client_id: str | None = None
    job: str | None = None
    counts: UndoCounts = field(default_factory=UndoCounts)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    unclearable: list[dict[str, Any]] = field(default_factory=list)
    cannot_restore: list[dict[str, Any]] = field(default_factory=list)  # lead id, e-mail, reason
    failures: list[dict[str, Any]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=lambda: {"total": 0, "by_status": {}})
    already_undone_by: str | None = None
    note: str | None = None
    duration_s: float = 0.0
    exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def decide_exit_code(self) -> int:
        """0: all reverted and verified (dry run: the report was written); 1: conflicts left,
        failures, fields the API cannot empty, or deleted leads it cannot bring back."""
        c = self.counts
        if self.dry_run:
            return 0
        return 1 if c.conflicts or c.failed or c.unclearable or c.cannot_restore else 0

    def tally(self, items: Iterable[UndoItem], final: dict[int, str] | None = None) -> None:
        """Count the items: by their plan (dry run) or by the outcome `final` (id(item) -> status)."""
        for it in items:
            status = final.get(id(it), it.action) if final is not None else it.action
            if status == "delete":
                status = "deleted"
            elif status == "restore":
                status = "unclearable" if it.clear else "restored"
            counter = COUNTER[status]
            setattr(self.counts, counter, getattr(self.counts, counter) + 1)
            if status == "unclearable":
                self.unclearable.append({"lead_id": it.lead_id, "email": it.email,
                                         "fields": {f: it.now.get(f) for f in it.clear},
                                         "restored": sorted(it.restore)})
            elif status == "failed":
                self.failures.append({"lead_id": it.lead_id, "email": it.email, "reason": it.reason})
            elif status == "cannot_restore":
                self.cannot_restore.append({"lead_id": it.lead_id, "email": it.email, "reason": it.reason})
            if status == "conflict" or it.forced:
                self.conflicts.append(it.conflict_entry())


# An item's final status -> the UndoCounts field that counts it.
COUNTER = {"deleted": "deleted", "restored": "restored", "conflict": "conflicts", "failed": "failed",
           "already_gone": "already_gone", "reverted": "already_reverted", "unclearable": "unclearable",
           "not_written": "not_written", "cannot_restore": "cannot_restore"}


# --- acting ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UndoOptions:
    dry_run: bool = False
    force: bool = False
    report_path: Path | None = None
    rate: float | None = None
    concurrency: int = 8
    verify_rounds: int = VERIFY_ROUNDS


def resolve_run(ledger: Ledger, ref: str | None) -> dict[str, Any]:
    """The run to undo, or UsageError (exit 2) saying why it cannot be undone."""
    if ref is None:
        run = ledger.last_writing_run()
        if run is None:
            raise UsageError(f"no run in {ledger.display} wrote anything; nothing to undo")
        return run
    run = ledger.get_run(ref)
    if run is None:
        raise UsageError(f"no run {ref!r} in the state database {ledger.display}; `leadgenius-etl runs` lists them")
    if run["command"] == "undo":
        raise UsageError(f"run {ref} is an undo, and an undo can't itself be undone; "
                         "to write those leads again, run the import again")
    if run["dry_run"]:
        raise UsageError(f"run {ref} was a dry run: it wrote nothing, so there is nothing to undo")
    return run


async def undo_run(
    settings: Settings,
    ref: str | None,
    options: UndoOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> UndoReport:
    """Undo one run (`ref` None: the newest run that wrote anything) and return the report (also
    written to options.report_path)."""
    started = time.perf_counter()
    ledger = open_state(settings, create=False)  # no state, no run to undo: say so, create nothing
    try:
        run = resolve_run(ledger, ref)
        report = UndoReport(dry_run=options.dry_run, run_id=run["run_id"], force=options.force,
                            client_id=run.get("client_id"), job=run.get("job"))
        with ExitStack() as locks:
            # One undo of a run at a time; never of a run still running; no sync of its job meanwhile
            # (the mark moves back).
            locks.enter_context(ledger.job_lock(f"undo:{run['run_id']}"))
            if run.get("ended_at") is None:
                locks.enter_context(not_running(ledger, run))
            writes = ledger.run_writes(run["run_id"])  # read under the locks: the run has stopped writing
            if not writes or all(w.get("undo_status") in TERMINAL for w in writes):
                _nothing_to_do(report, run, writes)
            else:
                if run.get("job") and not options.dry_run:
                    locks.enter_context(ledger.job_lock(str(run["job"])))
                await _undo(settings, ledger, run, writes, options, report, transport, progress)
    finally:
        ledger.close()
    report.duration_s = round(time.perf_counter() - started, 3)
    if options.report_path:
        write_json_atomic(options.report_path, report.to_dict())
    return report


@contextmanager
def not_running(ledger: Ledger, run: dict[str, Any]) -> Iterator[None]:
    """Hold the lock of a run that has no end: free, it died (kill -9, a lost machine) and is undone
    from its write log; held, its process is still writing, and RunStillRunning says so (exit 4)."""
    held = ExitStack()
    try:
        held.enter_context(ledger.run_lock(run["run_id"]))
    except JobLocked as exc:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(run["started_at"])))
        raise RunStillRunning(
            f"run {run['run_id']} is still running ({exc.holder}, started {started}); nothing was undone: "
            "wait for it to end (or stop it), then run the undo again"
        ) from None
    with held:
        yield


def _nothing_to_do(report: UndoReport, run: dict[str, Any], writes: list[dict[str, Any]]) -> None:
    counts = run.get("counts") or {}
    if not writes and (counts.get("created") or counts.get("updated")):
        raise UsageError(f"run {run['run_id']} was recorded before this version kept a write log; "
                         "it cannot be undone exactly")
    by = next((w["undo_run"] for w in reversed(writes) if w.get("undo_run")), None)
    report.already_undone_by = by
    report.note = f"already undone by {by}; nothing to do" if by else "the run wrote nothing; nothing to do"
    report.exit_code = 0


async def _undo(
    settings: Settings, ledger: Ledger, run: dict[str, Any], writes: list[dict[str, Any]], options: UndoOptions,
    report: UndoReport, transport: httpx.AsyncBaseTransport | None, progress: Progress | None,
) -> None:
    notify = progress or (lambda _e, _n: None)
    log = get_logger(stage="undo", run_id=run["run_id"])
    report.undo_run_id = ledger.start_run(
        command="undo", source=run.get("source"), target=settings.base_url, client_id=run.get("client_id"),
        mode="force" if options.force else None, dry_run=options.dry_run, job=run.get("job"),
        undo_of=run["run_id"],
    )
    undo_id = report.undo_run_id
    try:
        async with LeadGeniusApi(settings, transport=transport, concurrency=options.concurrency,
                                 rate_per_min=options.rate) as api:
            api.on_throttled = lambda: notify("429s", 1)
            company = await api.company()  # also proves the credentials before anything else
            company_id = company.get("company_id") if settings.api_key else None
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for w in writes:
                if w.get("undo_status") not in TERMINAL:
                    groups.setdefault((w["target"], w["client_id"]), []).append(w)
            for target, _client in groups:
                if target != api.target_id:
                    raise UsageError(
                        f"run {run['run_id']} wrote to {target.split('#')[0]} as user {target.split('#')[-1]}; "
                        f"this session reaches {api.target_id.split('#')[0]} as user {api.keeper.user_id}: "
                        "set LEADGENIUS_BASE_URL and log in as that user"
                    )
            marks = [{"job": m["job"], "name": m["name"], "from": m["after_value"], "to": m["before_value"]}
                     for m in ledger.marks_set_by(run["run_id"])]
            if not options.dry_run:
                _move_marks_back(ledger, marks)  # before any delete: a kill after it loses nothing
            report.marks = marks
            for (target, client_id), rows in groups.items():
                snap = await read_target(api, client_id, company_id=company_id)
                ctx = ledger_context(ledger.client_writes(target, client_id), run["run_id"])
                end = window_end(writes, run, settings.timeout_s)
                items = plan_undo(rows, snap.frame, ctx, window_end=end, force=options.force)
                log.info("planned", client_id=client_id, **_action_counts(items))
                if options.dry_run or not any(it.action in ("delete", "restore") for it in items):
                    if not options.dry_run:  # nothing to send: the verdicts are final as planned
                        _record(ledger, undo_id, items, {id(it): it.action for it in items})
                    report.tally(items)
                    continue
                final = await _act_and_verify(api, ledger, undo_id, items, options, report, company_id, notify)
                report.tally(items, final)
            report.requests = api.stats.to_dict()
    except EtlError as exc:
        ledger.finish_run(undo_id, exit_code=exc.exit_code, counts=asdict(report.counts))
        raise
    except Exception:
        ledger.finish_run(undo_id, exit_code=70, counts=asdict(report.counts))
        raise
    report.exit_code = report.decide_exit_code()
    ledger.finish_run(undo_id, exit_code=report.exit_code, counts=asdict(report.counts))


def _action_counts(items: list[UndoItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for it in items:
        counts[it.action] = counts.get(it.action, 0) + 1
    return counts


async def _act_and_verify(
    api: LeadGeniusApi, ledger: Ledger, undo_id: str, items: list[UndoItem], options: UndoOptions,
    report: UndoReport, company_id: str | None, notify: Progress,
) -> dict[int, str]:
    """Delete and restore, then re-read the client until it holds what the plan asked for (bounded).
    Returns id(item) -> final undo status."""
    log = get_logger(stage="undo", client_id=items[0].client_id if items else None)
    deletes = [it for it in items if it.action == "delete"]
    restores = [it for it in items if it.action == "restore"]
    final: dict[int, str] = {id(it): it.action for it in items if it.action not in ("delete", "restore")}
    # Durable before any request: a kill from here on leaves the next undo a plan to finish.
    _record(ledger, undo_id, items, {id(it): "deleting" for it in deletes} | {id(it): "restoring" for it in restores}
            | final)
    notify("planned", len(deletes) + len(restores))
    client_id = items[0].client_id if items else ""
    await delete_in_batches(api, [lid for it in deletes for lid in it.lead_ids], options.concurrency, notify)
    await _restore(api, ledger, undo_id, restores, options.concurrency, notify, final, batch=True)
    verify: dict[str, Any] = {"reads": 0, "deleted_again": 0, "restored_again": 0}
    for round_no in range(options.verify_rounds + 1):
        snap = await read_target(api, client_id, company_id=company_id)
        verify["reads"] += 1
        frame = snap.frame
        wanted = {lid for it in deletes for lid in it.lead_ids} | {it.lead_ids[0] for it in restores if it.lead_ids}
        present = {str(lead["id"]): lead for lead in frame.filter(pl.col("id").is_in(list(wanted))).to_dicts()}
        left = [lid for it in deletes for lid in it.lead_ids if lid in present]
        bad = [it for it in restores if id(it) not in final and it.lead_id in present
               and any(present[it.lead_id].get(f) != v for f, v in it.restore.items())]
        for it in restores:
            if id(it) not in final and it.lead_id not in present:
                final[id(it)] = "already_gone"  # deleted by someone between our PUT and this read
            elif id(it) not in final and not it.written:
                # A batch PUT answers no lead: the stamp our write left is the one this read sees.
                it.written = present[str(it.lead_id)].get("updatedAt")
        log.info("verified", round=round_no, left=len(left), not_restored=len(bad))
        if (not left and not bad) or round_no == options.verify_rounds:
            break
        verify["deleted_again"] += len(left)
        verify["restored_again"] += len(bad)
        await delete_in_batches(api, left, options.concurrency, None)
        await _restore(api, ledger, undo_id, bad, options.concurrency, None, final, batch=False)
    left_ids = set(left)
    bad_ids = {id(it) for it in bad}
    for it in deletes:
        if any(lid in left_ids for lid in it.lead_ids):
            final[id(it)] = "failed"
            it.reason = it.reason or "still in the target after repeated batch deletes"
        else:
            final[id(it)] = "deleted"
    for it in restores:
        if id(it) in final:
            continue
        if id(it) in bad_ids:
            final[id(it)] = "failed"
            it.reason = it.reason or "the old values did not stick after repeated PUTs"
        else:
            final[id(it)] = "unclearable" if it.clear else "restored"
    report.verify = {key: report.verify.get(key, 0) + value for key, value in verify.items()}
    _record(ledger, undo_id, items, final)
    ledger.forget_undone(
        items[0].target, client_id,
        [lid for it in deletes if final[id(it)] == "deleted" for lid in it.lead_ids],
        [it.key for it in restores if final[id(it)] in ("restored", "unclearable")],
    )
    return final


def _record(ledger: Ledger, undo_id: str, items: list[UndoItem], status: dict[int, str]) -> None:
    ledger.record_undo(undo_id, [
        (it.run_id, it.target, it.client_id, it.key, status[id(it)], it.written)
        for it in items if id(it) in status
    ])


async def _restore(
    api: LeadGeniusApi, ledger: Ledger, undo_id: str, items: list[UndoItem], concurrency: int,
    notify: Progress | None, final: dict[int, str], *, batch: bool,
) -> None:
    """PUT the old values back: in batch PUTs of RESTORE_BATCH (`batch`), else one lead per PUT."""
    log = get_logger(stage="undo")

    async def single(it: UndoItem) -> None:
        assert it.lead_id is not None
        try:
            lead = await api.update_lead(it.lead_id, it.restore)
        except ApiError as exc:
            if exc.status == 404:
                final[id(it)] = "already_gone"
                return
            it.reason = exc.message
            log.warning("restore refused", lead_id=it.lead_id, reason=exc.message)
            return
        it.written = str(lead.get("updatedAt")) if lead.get("updatedAt") else None
        # The stamp of our own restore, kept at once: undoing an older run must not take it for a
        # change made by someone else.
        ledger.record_undo(undo_id, [(it.run_id, it.target, it.client_id, it.key, "restoring", it.written)])
        if notify:
            notify("restored", 1)

    async def one(chunk: list[UndoItem]) -> None:
        if len(chunk) > 1:
            try:
                await api.update_leads([{"id": str(it.lead_id), **it.restore} for it in chunk])
            except ApiError as exc:
                log.info("batch restore refused; one lead per PUT", leads=len(chunk), reason=exc.message)
            else:
                if notify:
                    notify("restored", len(chunk))
                return
        for it in chunk:
            await single(it)

    await each(list(batches(items, RESTORE_BATCH)) if batch else [[it] for it in items], one, concurrency)


def _move_marks_back(ledger: Ledger, marks: list[dict[str, Any]]) -> None:
    """A sync run's high-water mark goes back to where the run started, before anything is deleted:
    the next sync reads the source from there and brings back what the undo deleted, if it is still
    in the source."""
    for mark in marks:
        if mark["to"] is None:
            ledger.delete_mark(mark["job"], mark["name"])
        else:
            ledger.set_mark(mark["job"], mark["name"], mark["to"])
