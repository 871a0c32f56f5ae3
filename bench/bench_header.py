"""Benchmark: what looking for a known export's header below line 1 (the preamble search) costs.

`import csv` opens a file with the search on (LinkedIn's `Notes:` lines are found and skipped);
`--skip-rows 0` turns it off. For each of bench_shapes' real shapes, plus an unknown layout (the
worst case: line 1 is no known header, so up to 50 lines are split and scored against every
format) and a LinkedIn export with its notes, in the same run and alternating: opening the file
with the search and without it (best of 7 each), against reading the whole file with the CSV
reader (the work the search is added to).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bench.bench_shapes import DATA, SHAPES, generate

LINKEDIN_NOTES = (
    'Notes:\n"When exporting your connection data, you may notice that some of the email addresses are missing. '
    "You will only see email addresses for connections who have allowed their connections to see or download "
    "their email address using this setting https://www.linkedin.com/psettings/privacy/email. You can learn more "
    'here https://www.linkedin.com/help/linkedin/answer/261"\n\n'
)


def _variant(name: str, rows: int, make: Callable[[str], str]) -> Path:
    """The seeds shape with its first line rewritten (`make(header_line) -> new start`)."""
    src = generate("seeds", rows)
    path = DATA / f"{name}_{rows}.csv"
    if not path.exists():
        text = src.read_text(encoding="utf-8")
        header, _, body = text.partition("\n")
        path.write_text(make(header) + body, encoding="utf-8")
    return path


def _best(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(quick: bool) -> str:
    from etl.extract.csv import SNIFF_BYTES, CsvFileSource, _HeadFields
    from etl.formats import builtin_formats, find_header

    formats = builtin_formats()  # loaded once per process in a run too: not part of a file's cost
    rows = 100_000 if quick else 1_000_000
    files = {shape: generate(shape, rows) for shape in SHAPES}
    files["unknown layout"] = _variant(
        "unknown", rows, lambda h: ",".join(f"col {i}" for i in range(h.count(",") + 1)) + "\n"
    )
    files["linkedin notes"] = _variant("linkedin", rows, lambda h: LINKEDIN_NOTES + h + "\n")
    out = [
        f"### The header search: its own cost, and opening a file with it and without it, {rows:,} rows",
        "",
        "| file | lines skipped | **search alone ms** | open, search on ms | open, search off (`--skip-rows 0`) ms "
        "| read whole file s | **search / read** |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, path in files.items():
        src = CsvFileSource(path)
        text = path.read_bytes()[:SNIFF_BYTES].decode(src._csv.encoding, "replace")
        alone = min(_best(lambda t=text: find_header(_HeadFields(t), formats), 50) for _ in range(3))
        on, off = [], []
        for _ in range(15):  # alternate: the box is shared and noisy
            on.append(_best(lambda p=path: CsvFileSource(p), 1))
            off.append(_best(lambda p=path: CsvFileSource(p, skip_rows=0), 1))
        read = _best(lambda s=src: pl.concat([b.frame for b in s.batches()]), 2)
        out.append(
            f"| {name} | {src.skipped_lines} | **{alone * 1e3:.2f}** | {min(on) * 1e3:.1f} | {min(off) * 1e3:.1f} "
            f"| {read:.2f} | **{alone / read:.2%}** |"
        )
    out += [
        "",
        "`search alone` = the work the search adds to an open (split the first lines, score them against every "
        "format), best of 150 calls on the file's sniffed sample; the two opens (best of 15, alternating) differ "
        "by that plus the box's noise. A LinkedIn file is misread without the search (line 1 `Notes:` taken as "
        "the header). Aim: the search costs < 1% of reading the file on every shape.",
    ]
    return "\n".join(out)
