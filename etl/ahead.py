"""Run a pure function over a stream on a few threads, a bounded number of items ahead, in order.

Used for the transform: one polars string expression runs on one core, so a lone transform
leaves the second core mostly idle. Transforming the next batches while the caller dedupes,
validates or loads the current one keeps both busy (1M-row dry run: ~10% faster, benchmark).
The function must be pure: items are processed concurrently, results are handed out in input
order, and an error surfaces when (and only when) the caller reaches the item that raised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

WORKERS = 2
"""Threads (and items in flight): one per core of the 2-core machines this is tuned on; each
item in flight holds one batch in memory (about 60 MB per 100k rows)."""


def map_ahead(
    items: Iterable[T], fn: Callable[[T], U], *, workers: int = WORKERS, name: str = "ahead"
) -> Generator[tuple[T, U], None, None]:
    """Yield `(item, fn(item))` in input order; up to `workers` items are processed ahead.

    `items` is advanced only by the thread that iterates the result. Closing the iterator
    early cancels work not yet started and waits for the (at most `workers`) running calls.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    source = iter(items)
    queue: deque[tuple[T, Future[U]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def fill() -> None:
        while len(queue) < workers:
            try:
                item = next(source)
            except StopIteration:
                return
            queue.append((item, pool.submit(fn, item)))

    try:
        fill()
        while queue:
            item, done = queue.popleft()
            fill()  # the next item starts before this one is handed out
            yield item, done.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
