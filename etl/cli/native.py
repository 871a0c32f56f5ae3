"""Keep a Rust panic's own report off the terminal: the CLI says it in one line (exit 70).

When code inside polars panics, Rust's panic hook writes `thread '…' panicked at <file>:…`, the
message, a backtrace when RUST_BACKTRACE is set, and a `note: …` line straight to file
descriptor 2, before pyo3 raises PanicException in Python (which `handle_errors` turns into one
line). Python cannot replace that hook, so while a command runs, fd 2 is a pipe read by a thread
that forwards everything except such panic reports; Python's own `sys.stderr` (progress bar,
logs, errors) writes to the terminal directly, as before. LEADGENIUS_ETL_DEBUG=1 shows it all.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

PANIC_START = re.compile(rb"^thread '[^']*'(?: \([^)]*\))? panicked at ")
PANIC_END = b"note: "
"""Ends a report: `note: run with RUST_BACKTRACE=1 …`, or after a backtrace `note: Some details …`."""
MAX_PANIC_LINES = 300
"""A report longer than this (no `note:` line came: RUST_BACKTRACE=full) is forwarded from there on."""


def forward_without_panics(lines: Iterable[bytes], write: Callable[[bytes], object]) -> None:
    """Pass every line to `write`, except the lines of a Rust panic report (pure, tested)."""
    held = 0  # lines of the current panic block so far; 0 = not in one
    for line in lines:
        if held == 0 and PANIC_START.match(line):
            held = 1
            continue
        if held:
            held += 1
            if line.startswith(PANIC_END):
                held = 0
                continue
            if held <= MAX_PANIC_LINES:
                continue
            held = 0
        write(line)


@contextmanager
def rust_panic_reports_hidden() -> Iterator[None]:
    if os.environ.get("LEADGENIUS_ETL_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
    except (OSError, ValueError, AttributeError):
        yield
        return
    original = sys.stderr
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(  # noqa: SIM115 - lives as long as the command
        terminal, "w", buffering=1, encoding=getattr(original, "encoding", None) or "utf-8",
        errors="backslashreplace", closefd=False,
    )

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source:
            forward_without_panics(source, lambda data: os.write(terminal, data))

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's write end at fd 2: the pump sees EOF
        thread.join(timeout=2.0)  # a child that kept fd 2 open would hold the pipe: do not wait for it
        sys.stderr = original
        if not thread.is_alive():
            os.close(terminal)
