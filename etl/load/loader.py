"""The loader: one lead per request, many in flight, driven by the plan and recorded in the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
import polars as pl

from etl.errors import ApiError, RetriableApiError, SkippableApiError, unwrapped_errors
from etl.load.api import LeadGeniusApi, LeadInDoubt
from etl.log import get_logger
from etl.report import Progress
from etl.state import Ledger, Outcome
from etl.transform import to_payload

# Seconds to wait before checking whether a create whose answer was lost did land: a slow answer
# may still be in progress on the server.
IN_DOUBT_WAIT_S = 2.0
MAX_IN_DOUBT_ROUNDS = 3


@dataclass
class LoadResult:
    created: int = 0
    updated: int = 0
    failed: int = 0
    resent_after_doubt: int = 0
    """Creates sent again after an unanswered POST was not found: the first may still land."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    """The ledger key of each entry of `failures`, in the same order."""

    def without_late(self, late: set[str]) -> tuple[int, int, list[dict[str, Any]]]:
        """Pure: (created, failed, failures) once the creates that reconcile found landed after all
        (`late`) count as created instead of failed."""
        kept = [f for k, f in zip(self.failed_keys, self.failures, strict=True) if k not in late]
        moved = len(self.failures) - len(kept)
        return self.created + moved, self.failed - moved, kept


class Loader:
    def __init__(
        self,
        api: LeadGeniusApi,
        ledger: Ledger,
        *,
        target: str,
        client_id: str,
        run_id: str,
        concurrency: int = 8,
        progress: Progress | None = None,
        in_doubt_wait_s: float = IN_DOUBT_WAIT_S,
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.target = target
        self.client_id = client_id
        self.run_id = run_id
        self.concurrency = max(1, concurrency)
        self.progress = progress or (lambda _kind, _n: None)
        self.in_doubt_wait_s = in_doubt_wait_s
        self.result = LoadResult()
        self.log = get_logger(stage="load", client_id=client_id)

    async def load(self, planned: pl.DataFrame) -> LoadResult:
        """Send every `create` and `update` of a planned frame; record intent first, outcome after."""
        work = planned.filter(pl.col("_action").is_in(["create", "update"]))
        if work.height == 0:
            return self.result
        items = work.to_dicts()
        self.ledger.record_writes(self.target, self.client_id, self.run_id, (_write_intent(it) for it in items))
        self.ledger.record_intents(
            self.target,
            self.client_id,
            self.run_id,
            [
                (
                    it["_key"],
                    "pending_create" if it["_action"] == "create" else "pending_update",
                    it["_hash"],
                    json.dumps(to_payload(it), sort_keys=True) if it["_action"] == "create" else None,
                )
                for it in items
            ],
        )
        try:
            with unwrapped_errors():
                await self._run_workers(items)
        finally:
            self.ledger.flush()  # outcomes so far are kept even when the run stops here
        return self.result

    async def _run_workers(self, items: list[dict[str, Any]]) -> None:
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](max_buffer_size=self.concurrency * 2)
        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(self._worker, receive.clone())
            receive.close()
            async with send:
                for it in items:
                    await send.send(it)

    async def _worker(self, receive: anyio.abc.ObjectReceiveStream[dict[str, Any]]) -> None:
        async with receive:
            async for item in receive:
                if item["_action"] == "create":
                    await self._create(item)
                else:
                    await self._update(item)

    async def _create(self, item: dict[str, Any]) -> None:
        payload = to_payload(item)
        for _round in range(MAX_IN_DOUBT_ROUNDS + 1):
            try:
                lead = await self.api.create_lead(payload)
            except LeadInDoubt:
                # The POST may have landed: look before sending it again (never a second lead).
                await anyio.sleep(self.in_doubt_wait_s)
                found = await self.api.find_leads(email=item["email"], client_id=self.client_id)
                if found:
                    self._done(item, "created", str(found[0]["id"]), ours=True, written_at=found[0].get("updatedAt"))
                    return
                if _round < MAX_IN_DOUBT_ROUNDS:
                    self.result.resent_after_doubt += 1
                continue
            except (SkippableApiError, RetriableApiError) as exc:
                self._failed(item, exc)
                return
            self._done(item, "created", str(lead.get("id")), ours=True, written_at=lead.get("updatedAt"))
            return
        # `ours`: any of those unanswered POSTs may still land; reconcile adopts the first copy that
        # does and removes the rest, in this run or the next one (never a lead left doubled).
        self._failed(item, ApiError("no answer from the target after repeated attempts"), maybe_created=True)

    async def _update(self, item: dict[str, Any]) -> None:
        fields = {f: item[f] for f in item["_changed"] if item.get(f) is not None}
        try:
            lead = await self.api.update_lead(item["_tid"], fields)
        except (SkippableApiError, RetriableApiError) as exc:
            self._failed(item, exc)
            return
        self._done(item, "updated", item["_tid"], written_at=lead.get("updatedAt"))

    def _done(
        self, item: dict[str, Any], status: str, lead_id: str, *, ours: bool = False, written_at: Any = None
    ) -> None:
        outcome = Outcome(item["_key"], status, lead_id, item["_hash"],
                          written_at=None if written_at is None else str(written_at))
        self.ledger.record_outcome(self.target, self.client_id, outcome, ours=ours)
        if status == "created":
            self.result.created += 1
        else:
            self.result.updated += 1
        self.progress(status, 1)

    def _failed(self, item: dict[str, Any], exc: ApiError, *, maybe_created: bool = False) -> None:
        self.ledger.record_outcome(
            self.target, self.client_id, Outcome(item["_key"], "failed", error=exc.message), ours=maybe_created
        )
        self.result.failed += 1
        self.result.failures.append({"_row": item.get("_row"), "email": item.get("email"), "_reason": exc.message})
        self.result.failed_keys.append(item["_key"])
        self.log.warning("lead refused", row=item.get("_row"), reason=exc.message)
        self.progress("failed", 1)


def _write_intent(item: dict[str, Any]) -> tuple[str, str, str | None, str | None, str | None]:
    """The write-log row of one planned send: an update keeps the before- and after-image of exactly
    the fields it PUTs (what `undo` puts back); a create keeps nothing more than its key."""
    if item["_action"] == "create":
        return item["_key"], "create", None, None, None
    target_values = json.loads(item["_before"]) if item.get("_before") else {}
    fields = [f for f in item["_changed"] if item.get(f) is not None]
    before = {f: target_values.get(f) for f in fields}
    after = {f: item[f] for f in fields}
    return item["_key"], "update", item["_tid"], json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)
