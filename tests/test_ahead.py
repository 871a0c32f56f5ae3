"""map_ahead: in order, bounded, errors at their item, early close stops the work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from etl.ahead import map_ahead


def test_results_come_in_input_order_with_their_items() -> None:
    def slow_for_evens(x: int) -> int:
        time.sleep(0.02 if x % 2 == 0 else 0)
        return x * x

    assert list(map_ahead(range(10), slow_for_evens)) == [(x, x * x) for x in range(10)]
    assert list(map_ahead([], slow_for_evens)) == []


def test_work_runs_concurrently_and_never_more_than_workers_plus_one_ahead() -> None:
    pulled = 0
    running = peak = 0
    lock = threading.Lock()

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(12):
            pulled += 1
            yield i

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.03)
        with lock:
            running -= 1
        return x

    stream = map_ahead(items(), work, workers=2)
    first = next(stream)
    assert first == (0, 0)
    assert pulled <= 3  # the one handed out + `workers` ahead
    rest = list(stream)
    assert [x for x, _ in rest] == list(range(1, 12))
    assert peak == 2


def test_an_error_surfaces_at_its_item_not_before() -> None:
    def fail_on_3(x: int) -> int:
        if x == 3:
            raise ValueError("bad item 3")
        return x

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad item 3"):
        for x, _ in map_ahead(range(10), fail_on_3):
            seen.append(x)
    assert seen == [0, 1, 2]


def test_closing_early_cancels_what_has_not_started() -> None:
    calls: list[int] = []

    def work(x: int) -> int:
        calls.append(x)
        time.sleep(0.01)
        return x

    stream = map_ahead(range(1000), work, workers=2)
    next(stream)
    stream.close()
    settled = len(calls)
    time.sleep(0.05)
    assert len(calls) == settled <= 4


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next(map_ahead([1], lambda x: x, workers=0))
