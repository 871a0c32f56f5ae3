"""Deleting leads: the documented batch delete (`DELETE /api/leads` with `{"ids": [...]}`), several
batches in flight through the paced API client, and a delete verified by re-reading the client.
Undo and the HubSpot sync's `on_archive = "delete"` both delete through here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from etl.errors import ApiError, unwrapped_errors
from etl.load.api import LeadGeniusApi
from etl.log import get_logger
from etl.reconcile import read_target
from etl.report import Progress

T = TypeVar("T")

DELETE_BATCH = 50  # seed 002: "delete leads first using a concurrent batch deletion script (batches of 50 IDs)"
VERIFY_ROUNDS = 3  # re-reads after the first one that may still repair something


def batches(items: list[T], size: int = DELETE_BATCH) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def each(work: list[Any], fn: Callable[[Any], Any], concurrency: int) -> None:
    """Run `fn` over `work` with at most `concurrency` in flight (the API client paces them)."""
    if not work:
        return
    send, receive = anyio.create_memory_object_stream[Any](max_buffer_size=len(work))
    for item in work:
        send.send_nowait(item)
    send.close()

    async def worker(mine: anyio.abc.ObjectReceiveStream[Any]) -> None:
        async with mine:
            async for item in mine:
                await fn(item)

    with unwrapped_errors():
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, min(concurrency, len(work)))):
                tg.start_soon(worker, receive.clone())
            receive.close()


async def delete_in_batches(api: LeadGeniusApi, lead_ids: list[str], concurrency: int, notify: Progress | None) -> None:
    """Batch deletes, several in flight; a refused batch is left to the verification to find."""
    log = get_logger(stage="delete")
    chunks = list(batches(lead_ids))

    async def one(chunk: list[str]) -> None:
        try:
            await api.delete_leads(chunk)
        except ApiError as exc:
            log.warning("batch delete refused", ids=len(chunk), reason=exc.message)
            return
        if notify:
            notify("deleted", len(chunk))

    await each(chunks, one, concurrency)


@dataclass
class DeleteResult:
    requested: int = 0
    deleted: int = 0
    failed_ids: list[str] = field(default_factory=list)
    reads: int = 0


async def delete_verified(
    api: Any, client_id: str, lead_ids: Sequence[str], *, company_id: str | None = None,
    rounds: int = VERIFY_ROUNDS, concurrency: int = 8,
) -> DeleteResult:
    """Delete `lead_ids` in batches (50 a request, several in flight), then re-read
    the client and delete again what is still there (bounded): the batch endpoints' counts are the
    server's word only (quirk 1 seen from the delete side)."""
    result = DeleteResult(requested=len(lead_ids))
    left = list(dict.fromkeys(lead_ids))
    for _ in range(rounds):
        if not left:
            break
        await delete_in_batches(api, left, concurrency, None)
        snap = await read_target(api, client_id, company_id=company_id)
        result.reads += 1
        present = set(snap.frame.get_column("id").to_list()) if snap.leads else set()
        left = [lid for lid in left if lid in present]
    result.failed_ids = left
    result.deleted = result.requested - len(left)
    return result
