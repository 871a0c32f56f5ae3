"""The filter that keeps a Rust panic's own report off stderr (etl.cli.native)."""

from __future__ import annotations

from etl.cli.native import MAX_PANIC_LINES, forward_without_panics

PANIC = [
    b"thread 'polars-3' (4242) panicked at crates/polars-arrow/src/array/binview/mod.rs:412:9:\n",
    b"assertion failed: i < self.len()\n",
    b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
]


def forwarded(lines: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    forward_without_panics(lines, out.append)
    return out


def test_panic_reports_are_dropped_and_everything_else_is_kept() -> None:
    before, after = b"some warning\n", b"leadgenius-etl: error: internal error: PanicException: ...\n"
    assert forwarded([before, *PANIC, after]) == [before, after]
    old_style = [b"thread '<unnamed>' panicked at src/lib.rs:1:1:\n", b"boom\n", PANIC[2]]
    assert forwarded([*old_style, after]) == [after]


def test_a_panic_report_with_a_backtrace_is_dropped() -> None:
    # RUST_BACKTRACE=1 (set on some machines by default): a backtrace, then another note line.
    report = [
        PANIC[0], PANIC[1], b"stack backtrace:\n", b"   0: rust_begin_unwind\n",
        b"             at /rustc/library/std/src/panicking.rs:665:5\n",
        b"note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n",
    ]
    assert forwarded([*report, b"next\n"]) == [b"next\n"]


def test_text_that_merely_mentions_a_panic_is_kept() -> None:
    lines = [b"a thread 'x' panicked at y, said the log\n", b"note: run with `RUST_BACKTRACE=1`\n"]
    assert forwarded(lines) == lines


def test_a_panic_block_without_its_note_line_releases_the_output() -> None:
    # No `note:` line (never seen, but then nothing after it must be swallowed for good).
    lines = [PANIC[0]] + [b"x%d\n" % i for i in range(MAX_PANIC_LINES + 5)]
    assert forwarded(lines) == lines[MAX_PANIC_LINES:]
