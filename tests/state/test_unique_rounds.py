"""PostgreSQL writes a batch set-based: a key given twice goes into a later round (pure)."""

from __future__ import annotations

from etl.state.postgres import unique_rounds


def test_each_round_holds_a_key_once_and_the_order_is_kept() -> None:
    rows = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3), ("b", 2)]
    assert unique_rounds(rows, lambda r: r[0]) == [
        [("a", 1), ("b", 1), ("c", 1)],
        [("a", 2), ("b", 2)],
        [("a", 3)],
    ]


def test_a_batch_without_repeats_is_one_round() -> None:
    rows = [(str(i),) for i in range(500)]
    assert unique_rounds(rows, lambda r: r) == [rows]
    assert unique_rounds([], lambda r: r) == []
