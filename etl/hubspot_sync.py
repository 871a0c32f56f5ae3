"""HubSpot sync rules beyond reading: when a scheduled run is a full one, which archived and
merged-away contacts are new since the last run, and what `on_archive` does with their leads.

Decisions are pure (unit-tested in tests/hubspot/test_sync_rules.py); `apply_on_archive` is the
one function here that does I/O (LeadGenius deletes, verified by re-reading).

Why a memory of the contacts already handled (`GoneMemory`, kept as a mark): the archived listing
is re-read from the mark minus the lookback, so an archive inside the lookback would count twice
in two runs; and a survivor's `hs_merged_object_ids` lists every merge it ever took, so a survivor
edited a month after its merge would report that merge again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from etl.extract.hubspot import ArchivedContact, Merge, iso_to_ms
from etl.load.deletes import delete_verified
from etl.sources import Incremental

if TYPE_CHECKING:
    from etl.config import Settings
    from etl.extract.hubspot import HubSpotSource
    from etl.report import RunReport

DEFAULT_LOOKBACK = timedelta(minutes=10)
MARK = "hubspot.lastmodifieddate"
MARK_LAST_FULL = "hubspot.last_full"  # when the last full run of the job finished confirmed
MARK_GONE = "hubspot.gone"  # GoneMemory, JSON

OnArchive = Literal["keep", "delete"]
ON_ARCHIVE = ("keep", "delete")


def full_reason(
    *, forced: bool, has_mark: bool, last_full: datetime | None, every: timedelta | None, now: datetime
) -> str | None:
    """Why this run reads everything, or None for an incremental run (pure).

    `full_every`: association switches leave no trace a search can find, so every so often a run
    re-reads everything; the first run of a job is full anyway and counts as one.
    """
    if forced:
        return "--full"
    if not has_mark:
        return "first run"
    if every is not None and every > timedelta(0):
        if last_full is None:
            return f"full_every {every}: no full run recorded yet"
        if now - last_full >= every:
            return f"full_every {every}: last full run {last_full.isoformat()}"
    return None


def email_keys(emails: Iterable[str | None]) -> list[str]:
    """E-mails as ledger keys (the transform's one normalisation: trim, `mailto:`, lower-case)."""
    from etl.transform.steps import normalise_email

    values = [e for e in emails if e]
    if not values:
        return []
    keys = normalise_email(pl.DataFrame({"email": values}, schema={"email": pl.String}))["_key"]
    return [k for k in keys.to_list() if k]


@dataclass(frozen=True)
class Gone:
    """Contacts gone since the last run: archived ones, and merged-away ones with their survivor."""

    archived: tuple[ArchivedContact, ...] = ()
    merged: tuple[tuple[str, Merge], ...] = ()  # (merged-away id, the survivor's merge record)

    def info(self) -> dict[str, Any]:
        return {
            "archived": len(self.archived),
            "archived_ids": sorted((a.id for a in self.archived), key=int),
            "merged_away": len(self.merged),
            "merged_away_ids": sorted((m for m, _ in self.merged), key=int),
            "merge_survivors": sorted({s.survivor for _, s in self.merged}, key=int),
        }

    def lead_keys(self, live_keys: Iterable[str]) -> dict[str, str]:
        """Ledger key -> why it is gone, for the leads of these contacts (pure).

        An archived contact's lead is found by its e-mail; a merged-away one's by the e-mails its
        survivor took over (hs_additional_emails: HubSpot gives a merged-away id no e-mail of its
        own). A key that is still a live contact's e-mail is never gone: two contacts may share an
        e-mail in different case, and their one lead is the live one's too.
        """
        live = set(live_keys)
        out: dict[str, str] = {}
        for a in self.archived:
            for key in email_keys([a.email]):
                out.setdefault(key, f"archived contact {a.id}")
        for merged_id, m in self.merged:
            for key in email_keys(m.emails):
                out.setdefault(key, f"contact {merged_id} merged into {m.survivor}")
        return {k: why for k, why in out.items() if k not in live}


@dataclass
class GoneMemory:
    """Archived and merged-away ids already reported or acted on by this job."""

    archived: dict[str, int] = field(default_factory=dict)  # id -> archivedAt (ms), pruned past the lookback
    merged: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, text: str | None) -> GoneMemory:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            archived = {str(k): int(v) for k, v in raw.get("archived", {}).items()}
            return cls(archived, {str(m) for m in raw.get("merged", [])})
        except (ValueError, AttributeError, TypeError):
            return cls()  # unreadable: report again rather than stop the job

    def dump(self) -> str:
        return json.dumps({"archived": self.archived, "merged": sorted(self.merged, key=int)}, sort_keys=True)

    def select(self, archived: Sequence[ArchivedContact], merges: Sequence[Merge]) -> Gone:
        """What is new in this run's read (pure)."""
        new_archived = tuple(a for a in archived if a.id not in self.archived)
        seen: set[str] = set(self.merged)
        new_merged: list[tuple[str, Merge]] = []
        for m in merges:
            for merged_id in m.merged_ids:
                if merged_id not in seen:
                    seen.add(merged_id)
                    new_merged.append((merged_id, m))
        return Gone(new_archived, tuple(new_merged))

    def remember(self, gone: Gone, *, horizon_ms: int) -> GoneMemory:
        """This memory plus `gone`, forgetting archives older than `horizon_ms` (the next read starts
        after them, so they can't come back)."""
        archived = {i: ms for i, ms in self.archived.items() if ms >= horizon_ms}
        for a in gone.archived:
            archived[a.id] = iso_to_ms(a.archived_at) if a.archived_at else horizon_ms
        return GoneMemory(archived, self.merged | {m for m, _ in gone.merged})


def split_deletable(gone_keys: dict[str, str], created: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(key -> lead id to delete, keys kept because this job did not create their lead) (pure)."""
    delete = {k: created[k] for k in gone_keys if k in created}
    kept = sorted(k for k in gone_keys if k not in created)
    return delete, kept


def created_by_job(ledger: Any, target: str, client_id: str, job: str, keys: Iterable[str]) -> dict[str, str]:
    """Ledger key -> lead id, for the `keys` whose lead a run of this job created (pure over the
    state's write log: a `create` a run of this job made, done, and not undone since).

    A lead created elsewhere (another job, a manual import, the UI, adopted by the job's first run,
    then only updated by it) is never this job's to delete.
    """
    wanted = set(keys)
    if not wanted:
        return {}
    jobs: dict[str, str | None] = {}
    out: dict[str, str] = {}
    for w in ledger.client_writes(target, client_id):
        if w["key"] not in wanted or w.get("action") != "create" or w.get("status") != "done" or not w.get("lead_id"):
            continue
        if w.get("undo_status") in ("deleted", "already_gone"):
            continue
        run_id = str(w["run_id"])
        if run_id not in jobs:
            run = ledger.get_run(run_id)
            jobs[run_id] = run.get("job") if run else None
        if jobs[run_id] == job:
            out[str(w["key"])] = str(w["lead_id"])
    return out


@dataclass
class HubSpotIncremental(Incremental):
    """`etl.jobs.run_incremental`'s adapter for HubSpot: changes since the mark less the lookback,
    full runs when due (`full_every`), the contacts archived or merged away since the last run
    (`on_archive`), and a mark taken from HubSpot's own clock at the run's start less the lookback
    (a change indexed late is then still inside the next run's window)."""

    access_token: str
    host: str
    lookback: timedelta = DEFAULT_LOOKBACK
    full_every: timedelta | None = None
    on_archive: OnArchive = "keep"
    mark: str = MARK
    last: HubSpotSource | None = field(default=None, init=False)
    _memory: GoneMemory = field(default_factory=GoneMemory, init=False)
    _window: datetime | None = field(default=None, init=False)
    _reason: str | None = field(default=None, init=False)
    _gone: Gone = field(default_factory=Gone, init=False)

    def begin(self, state: Any, job: str, *, stored: datetime | None, since: datetime | None, full: bool,
              now: datetime) -> tuple[datetime | None, str | None]:
        last_full_text = state.get_mark(job, MARK_LAST_FULL)
        self._memory = GoneMemory.load(state.get_mark(job, MARK_GONE))
        self._reason = None if since else full_reason(
            forced=full, has_mark=stored is not None,
            last_full=_parse(last_full_text) if last_full_text else None, every=self.full_every, now=now,
        )
        self._window = since or (stored - self.lookback if stored else None)  # archives and merges since then are new
        return (None if self._reason else self._window), self._reason

    def source(self, since: datetime | None) -> HubSpotSource:
        from etl.extract.hubspot import HubSpotSource

        self.last = HubSpotSource(self.access_token, self.host, since=since,
                                  archived_since=self._window if self._reason else None)
        return self.last

    def next_mark(self, watermark: datetime | None, run_start: datetime) -> datetime | None:
        # Everything modified before HubSpot's clock at the start, less the lookback, was indexed
        # when this run searched (the lookback bounds the index lag), and read: that is the mark.
        assert self.last is not None
        return (self.last.extractor.server_time or run_start) - self.lookback

    def describe(self) -> dict[str, Any]:
        assert self.last is not None
        source = self.last
        self._gone = self._memory.select(source.archived, source.merges) if self._window else Gone()
        server_start = source.extractor.server_time
        return {
            "hubspot_clock_at_start": server_start.isoformat() if server_start else None,
            "mark_cap": (server_start - self.lookback).isoformat() if server_start else None,
            "newest_change_read": source.newest, "search_per_s": source.extractor.search_per_second,
            "on_archive": self.on_archive, **self._gone.info(), "hubspot_requests": source.requests,
        }

    async def settle(self, settings: Any, report: Any, *, confirmed: bool, transport: Any) -> bool:
        assert self.last is not None
        if report.mode == "insert" and (report.source_info.get("changed_companies") or self._reason):
            report.source_info["note"] = (
                "mode insert never updates a lead that exists: company changes and primary-company switches "
                'reach LeadGenius with mode = "upsert"'
            )
        gone = self._gone.archived or self._gone.merged
        if self.on_archive == "delete" and gone and report.dry_run:
            await _delete_gone(settings, report, self._gone, self.last, str(report.source_info["job"]), transport,
                               dry_run=True)
        if confirmed and self.on_archive == "delete" and gone:
            return await _delete_gone(settings, report, self._gone, self.last, str(report.source_info["job"]),
                                      transport)
        return confirmed

    def commit(self, state: Any, job: str, *, confirmed: bool, mark: datetime | None, now: datetime,
               run_id: str | None) -> None:
        if not confirmed:
            return
        assert self.last is not None
        if self._reason:
            state.set_mark(job, MARK_LAST_FULL, now.isoformat(), run_id=run_id)  # undo moves it back
        # first run: every merge already in HubSpot is history, not news
        seen = self._gone if self._window else Gone(
            merged=tuple((i, m) for m in self.last.merges for i in m.merged_ids))
        horizon = round(((mark or now) - self.lookback).timestamp() * 1000)
        state.set_mark(job, MARK_GONE, self._memory.remember(seen, horizon_ms=horizon).dump())


def _parse(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _delete_gone(
    settings: Settings, report: RunReport, gone: Gone, source: Any, job: str, transport: Any, *,
    dry_run: bool = False,
) -> bool:
    """on_archive = "delete": delete the leads this job created for the gone contacts, verified by
    re-reading. Returns whether every one is gone (else the marks stay, and the next run retries).
    A dry run only says which it would delete (`would_delete`)."""
    from etl.load.api import LeadGeniusApi
    from etl.state import open_state

    info = report.source_info
    live = set(email_keys(source.live_emails))
    keys = gone.lead_keys(live)
    # an e-mail a live contact still has (one not read in this run) keeps its lead
    still_live = source.extractor.live_emails(sorted(keys))
    keys = {k: why for k, why in keys.items() if k not in set(email_keys(still_live))}
    client_id = str(report.client_id)
    async with LeadGeniusApi(settings, transport=transport) as api:
        target = api.target_id
        ledger = open_state(settings)
        try:
            created = created_by_job(ledger, target, client_id, job, keys)
            delete, kept = split_deletable(keys, created)
            if not dry_run:  # in the run's write log before the requests: its undo says what it can't bring back
                ledger.record_writes(target, client_id, str(report.run_id),
                                     [(key, "delete", lead_id, None, None) for key, lead_id in delete.items()])
        finally:
            ledger.close()
        if dry_run:
            info.update({"would_delete": sorted(delete), "kept_not_created_by_job": kept})
            return False
        result = await delete_verified(api, client_id, list(delete.values()),
                                       company_id=report.target.get("company_id"))
        gone_ids = [lid for lid in delete.values() if lid not in set(result.failed_ids)]
        ledger = open_state(settings)
        try:  # no longer ours nor expected: reconcile must not bring them back
            ledger.forget_undone(target, client_id, gone_ids, [])
        finally:
            ledger.close()
    info.update({
        "deleted": result.deleted, "deleted_keys": sorted(delete), "delete_failed": result.failed_ids,
        "delete_reads": result.reads, "kept_not_created_by_job": kept,
    })
    return not result.failed_ids  # leads left undeleted make the run's exit code 1 (report.decide_exit_code)
