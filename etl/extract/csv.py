"""CSV extraction: sniff a file, then stream it as polars frames of bounded size.

How a file is read (bounded memory, vectorised, never crashes on a bad row):

1. `open_csv` sniffs the encoding (UTF-8 with or without BOM, UTF-16 LE/BE by BOM or by
   NUL pattern, else cp1252 / latin-1), the delimiter (`,` `;` tab `|`, or Excel's
   `sep=;` first line) and parses the header. User mistakes (missing file, directory,
   empty, header-only, binary, undecodable header) raise `InputFileError` with one line.
2. `CsvSource.batches` reads raw blocks as UTF-8 bytes (a UTF-8 file as it is, with no
   decode; any other encoding is decoded and re-encoded one block at a time, so a 5M-row
   UTF-16 file never sits in memory whole), cuts each block at the last record boundary
   (an even number of `"` before a newline), and parses the block with polars' CSV reader
   (all columns String, a few spare trailing columns to catch extra fields, an invalid
   byte read as U+FFFD).
3. Field counts per record come from a vectorised pass over the block's physical lines:
   `"` parity says which lines continue a quoted field, separators outside quoted
   segments are counted, and the counts are summed per record. polars fills a missing
   trailing field with `""`, so this pass is what tells a short (ragged) row apart from
   one whose last cells are empty.
4. If polars refuses a block (malformed quoting) or disagrees with the line pass about
   the number of records, that block is tokenised by a linear-time regex instead
   (Python `csv` semantics: a quote is special only at the start of a field). The file
   still streams on; the odd records end up in the rejects with a reason.

Rejected records (rule ids): `ragged_row` (field count differs from the header),
`undecodable` (a byte sequence that is not valid in the sniffed encoding; a U+FFFD that the
file itself holds is data: an earlier tool put it there), `field_too_long` (a value over
`max_field_bytes`).
Completely blank lines are not records: they keep their number but yield nothing.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, overload

import polars as pl

from etl.errors import ConfigError, InputFileError
from etl.report import REJECT_COLUMNS
from etl.sources import SourceBatch

if TYPE_CHECKING:
    from etl.config import Settings
    from etl.jobs import JobSpec
    from etl.mapping import Mapping

SNIFF_BYTES = 4 * 1024 * 1024
"""How much of the file the encoding and delimiter sniffers look at."""

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
BATCH_ROWS = 100_000
"""Records per batch by default (the CLI's too): ~16 MB blocks of a typical file, under glibc's
32 MB mmap ceiling, so block buffers are reused instead of mapped and faulted in afresh (200k
rows measured slower and 50% more peak memory, benchmark)."""
SPARE_COLUMNS = 4
"""Extra String columns given to polars so that surplus fields land somewhere visible."""

_MAX_BACKTRACK_LINES = 2_000
"""How far back a block cut looks for an even-quote newline before giving up (see `_cut`)."""

REPLACEMENT = "\ufffd"
_ESCAPED = re.compile("[\udc80-\udcff]")
_ESCAPED_RUN = re.compile("[\udc80-\udcff]+")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_MARKERS = tuple(chr(c) for c in range(0xFDD0, 0xFDF0))
"""Noncharacters that stand for undecodable bytes while a block is parsed (one absent from the block)."""

UNDECODABLE = "leadgenius-etl-undecodable"
"""Decode error handler: a byte sequence invalid in the file's encoding becomes a lone surrogate,
which `.encode("utf-8", "surrogateescape")` writes as the byte 0xFF, never valid UTF-8. So every
block handed to the parser is invalid UTF-8 exactly where the file was undecodable, and a U+FFFD
the file holds stays a character (csv-spectrum's location_coordinates.csv)."""


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\udcff", exc.end


codecs.register_error(UNDECODABLE, _escape_undecodable)


@dataclass(frozen=True)
class CsvBatch:
    """One slice of a CSV file.

    `frame`: `_row` (Int64, 1-based record number, header not counted) + the file's original
    column names, all String. `rejects`: `_row`, `_reason`, `_rule` + the original columns.
    """

    frame: pl.DataFrame
    rejects: pl.DataFrame


@dataclass(frozen=True)
class CsvSource:
    """A sniffed CSV file. Iterate `batches()` to read it; it can be read more than once."""

    path: Path
    encoding: str
    delimiter: str
    columns: list[str]
    max_field_bytes: int = 65_536
    skipped_lines: int = 0
    """Lines before the header (a preamble). Record numbers count them, so that for one-line
    records a record's line in the file is `_row + 1` with or without a preamble."""
    _data_start_chars: int = field(default=0, repr=False)
    """Characters (in the decoded text, BOM excluded) before the first data record."""
    _data_start_bytes: int = field(default=0, repr=False)
    """Bytes of the file (BOM included) before the first data record (UTF-8 files only)."""
    _avg_record_bytes: float = field(default=100.0, repr=False)
    """Average UTF-8 bytes per record in the sniffed sample (sizes the blocks)."""

    def batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[CsvBatch]:
        """Yield batches of roughly `batch_rows` records, reading the file block by block.

        The first batch is an eighth of that: the caller (a transform, the first POSTs) starts
        sooner, while the next block is parsed.

        The next block is read, decoded and parsed in a worker thread while the caller works on
        the current batch (polars releases the GIL, so extraction overlaps the caller's
        transform on a second core); at most one parsed block waits ahead. Output and order
        are the same as parsing inline: record numbers are assigned in order when a batch is
        handed out. Only the worker advances the block reader (one worker: jobs run in order).
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        block_bytes = int(min(max(batch_rows * self._avg_record_bytes, 512), 256 * 1024 * 1024))
        blocks = self._blocks(block_bytes)

        def parse_next() -> tuple[CsvBatch, int] | None:
            cut = next(blocks, None)
            if cut is None:
                return None
            block, balanced = cut
            return _parse_block(block, self.columns, self.delimiter, 1, self.max_field_bytes, balanced)

        next_row = 1 + self.skipped_lines
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-parse") as pool:
            upcoming: Future[tuple[CsvBatch, int] | None] = pool.submit(parse_next)
            while True:
                done = upcoming.result()
                if done is None:
                    return
                upcoming = pool.submit(parse_next)
                batch, consumed = done
                yield _renumber(batch, next_row)
                next_row += consumed

    def _blocks(self, block_bytes: int) -> Iterator[tuple[bytes, bool]]:
        """The records as UTF-8, cut into blocks of complete records, each ending with a newline,
        with whether the block's `"` count is even (known from the cut; saves a scan).

        Every block copy still alive adds to peak RSS and costs page faults (this runs in the
        worker next to the caller's transform), so a block is copied once: when the partial
        record left from the previous read is joined to the records of this one.
        """
        pending = b""
        quotes = 0  # `"` in `pending`: the parity the next chunk starts with
        for chunk in self._utf8_chunks(block_bytes):
            cut, block_quotes = _cut(chunk, quotes)
            if cut <= 0:  # no complete record yet: read more
                pending = b"".join((pending, chunk))
                quotes += chunk.count(b'"')
                continue
            view = memoryview(chunk)
            block = chunk if not pending and cut == len(chunk) else b"".join((pending, view[:cut]))
            pending = bytes(view[cut:])
            quotes = pending.count(b'"')
            del view, chunk
            yield block, block_quotes % 2 == 0
            del block  # not held while the next chunk is read
        if pending:
            yield (pending if pending.endswith(b"\n") else pending + b"\n"), quotes % 2 == 0

    def _utf8_chunks(self, size: int) -> Iterator[bytes]:
        """The file after the header, as UTF-8, in chunks of about `size` bytes (none empty).

        A UTF-8 file is read as it is: no decode (polars decodes as it parses, an invalid byte
        becoming U+FFFD as Python's "replace" does). Other encodings are decoded and
        re-encoded one chunk at a time, so a 5M-row UTF-16 file never sits in memory whole.
        """
        with self.path.open("rb") as fh:
            want = max(size // 8, 512)  # a small first chunk: the caller starts while the rest is read
            if self.encoding == "utf-8":
                fh.seek(self._data_start_bytes)
                while raw := fh.read(want):
                    yield raw
                    want = size
                return
            decoder = codecs.getincrementaldecoder(self.encoding)(errors=UNDECODABLE)
            to_skip = self._data_start_chars
            scale = 2 if self.encoding.startswith("utf-16") else 1
            while True:
                raw = fh.read(want * scale)
                want = size
                text = decoder.decode(raw, final=not raw)
                if to_skip:
                    skipped = min(to_skip, len(text))
                    text, to_skip = text[skipped:], to_skip - skipped
                if text:
                    yield text.encode("utf-8", "surrogateescape")  # undecodable -> 0xFF (see UNDECODABLE)
                if not raw:
                    return


def _renumber(batch: CsvBatch, first_row: int) -> CsvBatch:
    """A batch parsed with record numbers from 1, renumbered to start at `first_row`."""
    if first_row == 1:
        return batch
    shift = pl.col("_row") + (first_row - 1)
    return CsvBatch(frame=batch.frame.with_columns(shift), rejects=batch.rejects.with_columns(shift))


# --- sniffing ---------------------------------------------------------------------------------


HeaderFinder = Callable[[Sequence[list[str]]], int]
"""Given the file's first lines split into fields, how many lines come before the header."""

PREAMBLE_SCAN_LINES = 50
"""How many of the first lines a `HeaderFinder` sees."""


def open_csv(
    path: str | Path,
    *,
    max_field_bytes: int = 65_536,
    skip_rows: int | None = 0,
    find_header: HeaderFinder | None = None,
) -> CsvSource:
    """Sniff encoding, delimiter and header. Raises `InputFileError` with one clear line.

    `skip_rows`: lines before the header (a preamble: a title, LinkedIn's `Notes:`), blank lines
    right after them included; None asks `find_header` (no finder: 0). Record numbers stay
    line-true: they count the skipped lines (see `CsvSource.skipped_lines`).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"input file not found: {p}")
    if p.is_dir():
        raise InputFileError(f"input path is a directory, not a CSV file: {p}")
    try:
        with p.open("rb") as fh:
            sample = fh.read(SNIFF_BYTES)
            whole = len(fh.read(1)) == 0
    except OSError as exc:
        raise InputFileError(f"cannot read input file {p}: {exc.strerror or exc}") from None
    if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise InputFileError(f"input file is empty: {p}")

    encoding, bom_chars = _sniff_encoding(sample, p)
    text = codecs.getincrementaldecoder(encoding)(errors=UNDECODABLE).decode(sample, final=whole)
    text = text[bom_chars:]
    start = 0  # a one-column file (a plain list of e-mails) is legal
    delimiter: str | None = None
    if skip_rows is None:
        hint = _SEP_HINT.match(text)  # Excel's "sep=;" line is a hint, not a preamble
        head = text[hint.end() if hint else 0 :]
        skip_rows = find_header(_HeadFields(head)) if find_header is not None else 0
        if skip_rows and hint:
            delimiter, start = hint.group(1), hint.end()
    skipped = 0
    if skip_rows:
        start, skipped = _skip_lines(text, start, skip_rows, p)
    sep_line = _SEP_HINT.match(text, start)
    if sep_line:
        delimiter = sep_line.group(1)
        start = sep_line.end()
    if delimiter is None:
        end = text.find("\n", start)
        first_line = text[start:end] if end >= 0 else text[start:]
        counts = {d: first_line.count(d) for d in DELIMITERS}
        best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the order of DELIMITERS
        delimiter = best if counts[best] else ","
    header_fields, header_end = _parse_header(text, start, delimiter, p, complete=whole)
    if any(_ESCAPED.search(name) for name in header_fields):
        raise InputFileError(f"cannot decode the header of {p} as {encoding}; save it as UTF-8")
    columns = _unique_names(header_fields)
    rest = text[header_end:]
    if whole and not rest.strip():
        raise InputFileError(f"input file has a header but no data rows: {p}")
    records = max(rest.count("\n"), 1)
    avg = max(len(rest.encode("utf-8", "surrogateescape")) / records, 8.0)
    bom_bytes = len(codecs.BOM_UTF8) if bom_chars and encoding == "utf-8" else 0
    return CsvSource(
        path=p,
        encoding=encoding,
        delimiter=delimiter,
        columns=columns,
        max_field_bytes=max_field_bytes,
        skipped_lines=skipped,
        _data_start_chars=header_end + bom_chars,
        _data_start_bytes=bom_bytes + len(text[:header_end].encode("utf-8")),
        _avg_record_bytes=avg,
    )


_SEP_HINT = re.compile(r"sep=(.)\r?\n")


class _HeadFields(Sequence[list[str]]):
    """The first PREAMBLE_SCAN_LINES lines, each split into fields by its own commonest delimiter
    (a line of prose has none: one field), split only when looked at: an ordinary file's finder
    reads line 1 and stops (splitting 50 lines of a 70-column export up front cost ~15 ms)."""

    def __init__(self, text: str) -> None:
        end = -1
        for _ in range(PREAMBLE_SCAN_LINES):  # `split("\n", n)` would copy the whole rest of the sample
            nxt = text.find("\n", end + 1)
            if nxt < 0:
                end = len(text)
                break
            end = nxt
        self._lines = text[:end].split("\n")
        if self._lines and not self._lines[-1]:
            self._lines.pop()  # what follows the last newline is no line
        self._split: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, i: int) -> list[str]: ...
    @overload
    def __getitem__(self, i: slice) -> list[list[str]]: ...
    def __getitem__(self, i: int | slice) -> list[str] | list[list[str]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i not in self._split:
            line = self._lines[i].removesuffix("\r")
            sep = max(DELIMITERS, key=line.count)  # ties: the order of DELIMITERS
            try:
                self._split[i] = next(csv.reader([line], delimiter=sep), [""]) or [""]
            except csv.Error:  # a line over the csv module's field limit: no header of ours
                self._split[i] = [line]
        return self._split[i]


def _skip_lines(text: str, start: int, n: int, path: Path) -> tuple[int, int]:
    """(where the header starts, lines skipped): `n` lines from `start`, then any blank ones."""
    pos, count = start, 0
    while True:
        end = text.find("\n", pos)
        if end < 0 or (count >= n and text[pos:end].strip()):
            break
        pos, count = end + 1, count + 1
    if count < n or not text[pos:].strip():
        lines = text.count("\n", start) + (not text.endswith("\n"))
        raise InputFileError(
            f"skipping {n} line(s) before the header leaves nothing of {path} (it has {lines} line(s)): "
            "the header is the first line after the skipped ones; lower --skip-rows (`skip_rows`)"
        )
    return pos, count


def _sniff_encoding(sample: bytes, path: Path) -> tuple[str, int]:
    """Return (codec, BOM length in decoded characters)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", 1
    if sample.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 1
    if sample.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 1
    if sample.startswith(b"PK\x03\x04"):
        raise InputFileError(f"{path} is a zip or Excel workbook, not CSV; export it as CSV (UTF-8) first")
    if b"\x00" in sample:
        # UTF-16 without a BOM: ASCII text has every other byte NUL.
        head = sample[:4096]
        even, odd = head[0::2].count(0), head[1::2].count(0)
        half = len(head) // 2
        if odd > 0.4 * half and even < 0.05 * half:
            return "utf-16-le", 0
        if even > 0.4 * half and odd < 0.05 * half:
            return "utf-16-be", 0
        raise InputFileError(f"{path} looks binary (NUL bytes), not a CSV text file")
    decoded = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape").decode(sample, final=False)
    bad = len(_ESCAPED.findall(decoded))  # undecodable bytes became lone surrogates
    if bad == 0:
        return "utf-8", 0
    good_non_ascii = len(_NON_ASCII.findall(decoded)) - bad
    # Valid multi-byte sequences almost never occur by chance in cp1252 text, so a file that
    # has them is UTF-8 with a few broken lines (those rows are rejected as undecodable).
    if good_non_ascii and good_non_ascii * 4 >= bad:
        return "utf-8", 0
    try:
        sample.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1", 0
    return "cp1252", 0


def _parse_header(text: str, start: int, delimiter: str, path: Path, *, complete: bool) -> tuple[list[str], int]:
    """Tokenise the first record at `start`; return its fields and where the data begins."""
    m = _record_regex(delimiter).match(text, start)
    if m is None or (not m.group(0).endswith("\n") and not complete):
        raise InputFileError(f"cannot find the end of the header line in {path}")
    record = m.group(0) if m.group(0).endswith("\n") else m.group(0) + "\n"
    fields = [_unquote(tok[:-1]) for tok in _token_regex(delimiter).findall(record)]
    if not any(f.strip() for f in fields):
        raise InputFileError(f"the first line of {path} is blank; the header must be on line 1")
    return fields, m.end()


def _unquote(token: str) -> str:
    """A header token without its terminator -> its value (header only, so plain Python)."""
    token = token.removesuffix("\r")
    m = re.fullmatch(r'"((?:[^"]|"")*)"(.*)', token, flags=re.S)
    return m.group(1).replace('""', '"') + m.group(2) if m else token


def _unique_names(fields: list[str]) -> list[str]:
    """Trim header names; blank ones become `column_<n>`; `_x` becomes `col_x` (our own
    columns start with `_`); repeats get `_2`, `_3`."""
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(fields, start=1):
        base = raw.strip().lstrip("\ufeff").strip() or f"column_{i}"
        if base.startswith("_"):
            base = f"col{base}"
        candidate, k = base, 2
        while candidate in seen:
            candidate, k = f"{base}_{k}", k + 1
        seen.add(candidate)
        names.append(candidate)
    return names


# --- block cutting and parsing ------------------------------------------------------------------


def _cut(buf: bytes, quotes_before: int = 0) -> tuple[int, int]:
    """(index just after the last newline that ends a record, `"` count before it); (0, 0)
    when there is no newline. A newline ends a record when the `"` before it, counting the
    `quotes_before` that precede `buf`, are even.

    Works on UTF-8 bytes: `"` and `\\n` never occur inside a multi-byte sequence.
    Bounded backtracking: with a stray unbalanced quote the parity never evens out, and the
    block is cut at the last newline anyway (with an odd count); the regex fallback then
    parses it record by record (a quote mid-field is literal), so the damage stays local.
    """
    pos = buf.rfind(b"\n")
    if pos < 0:
        return 0, 0
    total = quotes = quotes_before + buf.count(b'"', 0, pos)
    candidate = pos
    for _ in range(_MAX_BACKTRACK_LINES):
        if quotes % 2 == 0:
            return candidate + 1, quotes
        prev = buf.rfind(b"\n", 0, candidate)
        if prev < 0:
            break
        quotes -= buf.count(b'"', prev, candidate)
        candidate = prev
    return pos + 1, total


def _token_regex(sep: str) -> re.Pattern[str]:
    s = re.escape(sep)
    return re.compile(f'(?:"[^"]*(?:""[^"]*)*"[^{s}\\n]*|[^{s}\\n]*)(?:{s}|\\n)')


def _record_regex(sep: str) -> re.Pattern[str]:
    s = re.escape(sep)
    field_re = f'(?:"[^"]*(?:""[^"]*)*"[^{s}\\n]*|[^{s}\\n]*)'
    return re.compile(f"{field_re}(?:{s}{field_re})*(?:\\n|\\Z)")


def _polars_token_pattern(sep: str) -> str:
    """The same tokeniser as `_token_regex`, in Rust regex syntax, for `str.extract_all`."""
    s = re.escape(sep)
    return f'(?:"[^"]*(?:""[^"]*)*"[^{s}\\n]*|[^{s}\\n]*)(?:{s}|\\n)'


def _line_field_counts(text: str, sep: str) -> pl.DataFrame:
    """Per record: number of fields and whether it is a blank line. Vectorised.

    Records end at a newline with an even number of `"` before it in the block; the fields of
    a record are split by the separators with an even number of `"` before them. When the
    block holds an even number of `"` (always, unless a stray quote made the cut give up),
    every `"`-delimited segment is a pair: replacing each pair by one `"` removes exactly the
    quoted separators and newlines, leaving one line per record whose separators all count
    (one regex pass over the block instead of per-line work: ~4x faster on the benchmark).
    A record that had quotes keeps a `"`, so it is never mistaken for a blank line.
    """
    if sep not in ('"', "\n") and text.count('"') % 2 == 0:
        collapsed = pl.Series("text", [text]).str.replace_all('"[^"]*"', '"')
        lines = collapsed.str.split("\n").explode()
        lines = lines.slice(0, len(lines) - 1)  # text ends with "\n": drop the empty tail
        return pl.DataFrame(
            {
                "nfields": lines.str.count_matches(sep, literal=True).cast(pl.Int64) + 1,
                "blank": lines.is_in(["", "\r"]),
            }
        )
    return _line_field_counts_by_line(text, sep)


def _line_field_counts_by_line(text: str, sep: str) -> pl.DataFrame:
    """`_line_field_counts` for any block, line by line (an odd number of quotes in the block).

    Lines without a quote (the vast majority) just count separators; only lines with quotes
    go through the quote-aware pass, on a filtered frame (evaluating it for every line made
    extraction 3x slower on the benchmark).
    """
    lines = pl.Series("line", [text]).str.split("\n").explode()
    lines = lines.slice(0, len(lines) - 1)  # text ends with "\n": drop the empty tail
    df = pl.DataFrame({"line": lines}).with_row_index("_li")
    df = df.with_columns(
        q=pl.col("line").str.count_matches('"', literal=True).cast(pl.Int64),
        seps=pl.col("line").str.count_matches(sep, literal=True).cast(pl.Int64),
        blank=pl.col("line").is_in(["", "\r"]),
    )
    df = df.with_columns(cq=pl.col("q").cum_sum())
    df = df.with_columns(end=(pl.col("cq") % 2) == 0)
    quoted = df.filter(pl.col("q") > 0)
    if quoted.height:
        inside_at_start = ((pl.col("cq") - pl.col("q")) % 2) == 1
        # Close quoted segments that cross the line edges, then drop every quoted segment:
        # what remains holds exactly the separators that split fields.
        wrapped = (
            pl.when(inside_at_start).then(pl.lit('"')).otherwise(pl.lit(""))
            + pl.col("line")
            + pl.when(pl.col("end")).then(pl.lit("")).otherwise(pl.lit('"'))
        )
        fixed = quoted.select(
            "_li", real=wrapped.str.replace_all('"[^"]*"', "").str.count_matches(sep, literal=True).cast(pl.Int64)
        )
        df = df.join(fixed, on="_li", how="left", maintain_order="left").with_columns(seps=pl.coalesce("real", "seps"))
        # A line that only continues a quoted field and holds no quote adds no separators.
        df = df.with_columns(
            seps=pl.when((pl.col("q") == 0) & ((pl.col("cq") % 2) == 1)).then(0).otherwise(pl.col("seps"))
        )
    if df.get_column("end").all():
        return df.select(nfields=pl.col("seps") + 1, blank=pl.col("blank"))
    df = df.with_columns(rec=pl.col("end").cast(pl.Int64).cum_sum() - pl.col("end").cast(pl.Int64))
    return (
        df.group_by("rec", maintain_order=True)
        .agg(
            nfields=pl.col("seps").sum() + 1,
            blank=pl.col("blank").first() & (pl.len() == 1),
        )
        .drop("rec")
    )


_MARK = "\x01"
"""The end-of-record marker of `_parse_with_marks` (a block that contains it is parsed the old way)."""


def _parse_with_marks(block: bytes, ncols: int, sep: str, balanced: bool | None = None) -> pl.DataFrame | None:
    """The common case in one polars parse: field counts from a marker field, no line pass.

    polars fills a missing trailing field with "", so its values alone cannot tell `a,b` from
    `a,b,`. Appending a marker field (`<sep>\x01`) to every line makes the marker's column the
    record's field count. The result equals the line pass only when polars splits fields
    the way the line pass does, which holds when every `"` belongs to a field that starts
    with `"` (quote parity then agrees everywhere). That is checked, not assumed: a value
    holding a `"` must also hold a separator or a newline (only a quoted field can), the
    block's `"` count is even, and every record has exactly one marker. Anything else
    (stray quotes, a blank line or a lone `""`, more fields than spare columns, the marker
    byte in the data) returns None and the block takes the general path
    (tests/extract/test_csv.py compares both on random blocks). A marker inserted inside a
    multi-line quoted value is removed. `balanced`: whether the block's `"` count is even,
    when the caller knows.
    """
    if len(sep.encode("utf-8")) != 1 or sep in ('"', "\n", "\r", _MARK):
        return None
    # Whole-block facts with bytes methods (memchr-speed scans, no copy).
    if _MARK.encode() in block or (block.count(b'"') % 2 if balanced is None else not balanced):
        return None
    # A mark goes before every LF, CRLF or not: polars drops one CR that ends an unquoted
    # field, as it does one before a record's LF, so `x\r<sep>\x01\n` reads as `x\r\n` does
    # (the tests compare both paths on random blocks with CRs anywhere). A one-byte replace
    # is ~10x faster than a two-byte one, and a CR needs no scan of its own.
    eol = "\n"
    mark = (sep + _MARK).encode()
    marked = block.replace(b"\n", mark + b"\n")
    inserted = (len(marked) - len(block)) // len(mark)
    names = [f"c{i}" for i in range(ncols + SPARE_COLUMNS + 1)]
    try:
        parsed = _read_block(marked, names, sep)
    except _POLARS_REFUSALS:
        return None
    if parsed.height == 0:
        return None
    # A record with as many fields as the header has its mark in column `ncols`: when every
    # record does (the usual block), that is the field count, with one comparison instead of
    # one per column (a 70-column export paid ~70).
    if parsed.select((pl.col(names[ncols]) == _MARK).fill_null(False).all()).item():
        nfields = pl.lit(ncols, dtype=pl.Int64)
    else:
        nfields = pl.coalesce(
            [pl.when(pl.col(n) == _MARK).then(pl.lit(i, dtype=pl.Int64)) for i, n in enumerate(names)]
        )
    parsed = parsed.with_columns(nfields=nfields)
    # Every mark now sits at a record's end or inside a quoted value (a line end in it). The
    # parse never makes marks, only drops them (cells past the spare columns): so when every
    # record has one (none missing) and as many were inserted as there are records, no value
    # holds one and the mark scans are skipped.
    only_own = inserted == parsed.height
    del marked
    needle = '"' if only_own else f'["{_MARK}]'
    shape = parsed.select(
        lo=pl.col("nfields").min(),
        hi=pl.col("nfields").max(),
        missing=pl.col("nfields").null_count(),
        blank=((pl.col("nfields") == 1) & (pl.col("c0") == "")).any(),
    ).row(0, named=True)
    if shape["missing"] or shape["blank"]:
        return None
    lo, hi = int(shape["lo"]), int(shape["hi"])
    # Cells from column `hi` on hold a record's own mark or are missing (""): only the columns
    # before it can hold a quote or a mark inside a value. One scan per column for both; the
    # few hits are looked at below.
    scanned = names[:hi]
    stats = parsed.select(pl.col(n).str.contains(needle, literal=only_own).any() for n in scanned).row(0, named=True)
    flagged = [n for n in scanned if stats[n]]
    if only_own:
        quoted, nested = flagged, set()
    else:
        detail = parsed.select(
            *[pl.col(n).str.contains('"', literal=True).any().alias(f"q_{n}") for n in flagged],
            *[
                (pl.col(n).str.contains(_MARK, literal=True) & (pl.col(n) != _MARK)).any().alias(f"m_{n}")
                for n in flagged
            ],
        ).row(0, named=True)
        quoted = [n for n in flagged if detail[f"q_{n}"]]
        # A mark inside a value (not the value itself): a quoted value spans a line end.
        nested = {n for n in flagged if detail[f"m_{n}"]}
    if quoted:  # a value with a `"` must also hold a separator or a newline
        stray = pl.any_horizontal(
            [
                pl.col(n).str.contains('"', literal=True)
                & ~(pl.col(n).str.contains(sep, literal=True) | pl.col(n).str.contains("\n", literal=True))
                for n in quoted
            ]
        )
        if parsed.select(stray.any()).item():
            return None
    inner = sep + _MARK + eol

    def value(i: int, n: str) -> pl.Expr:
        col = pl.col(n).str.replace_all(inner, eol, literal=True) if n in nested else pl.col(n)
        if lo <= i <= hi:  # the only columns that hold records' own marks
            col = pl.when(pl.col(n) == _MARK).then(pl.lit("")).otherwise(col)
        return col.alias(n)

    return parsed.select(*[value(i, n) for i, n in enumerate(names[:-1])], "nfields", blank=pl.lit(False))


_POLARS_REFUSALS = (
    pl.exceptions.ComputeError,
    pl.exceptions.NoDataError,
    pl.exceptions.ShapeError,
    pl.exceptions.SchemaError,  # the block's first record has more fields than the schema
)


def _read_block(data: bytes, names: list[str], sep: str) -> pl.DataFrame:
    """polars' CSV reader on one block: all String, no header, short rows padded with ""."""
    return pl.read_csv(
        data,
        has_header=False,
        separator=sep,
        schema=dict.fromkeys(names, pl.String),
        truncate_ragged_lines=True,
        missing_columns="insert",
        empty_string_is_null=False,
        quote_char='"',
        infer_schema=False,
        encoding="utf8-lossy",  # an invalid byte becomes U+FFFD, as Python's "replace" does
    )


def _parse_with_polars(block: bytes, ncols: int, sep: str, balanced: bool | None) -> pl.DataFrame | None:
    """Parse a block with polars' reader; None when it refuses or miscounts records."""
    marked = _parse_with_marks(block, ncols, sep, balanced)
    if marked is not None:
        return marked
    names = [f"c{i}" for i in range(ncols + SPARE_COLUMNS)]
    try:
        parsed = _read_block(block, names, sep)
    except _POLARS_REFUSALS:
        return None
    counts = _line_field_counts(block.decode("utf-8", "replace"), sep)
    if counts.height != parsed.height:
        return None
    # polars also turns a dangling quote run into odd values; the line pass is the authority.
    # The spare columns stay: `_parse_block` joins them into `_surplus` for rejected rows only.
    return pl.concat([parsed, counts], how="horizontal")


def _parse_with_regex(text: str, ncols: int, sep: str) -> pl.DataFrame:
    """Tokenise a block with a regex that always matches at a field start: never desyncs."""
    tokens = pl.Series("tok", [text]).str.extract_all(_polars_token_pattern(sep)).explode()
    df = pl.DataFrame({"tok": tokens}).drop_nulls()
    is_last = pl.col("tok").str.ends_with("\n")
    df = df.with_columns(_last=is_last)
    df = df.with_columns(rec=pl.col("_last").cast(pl.Int64).cum_sum() - pl.col("_last").cast(pl.Int64))
    body = (
        pl.when(pl.col("_last"))
        .then(pl.col("tok").str.strip_suffix("\n").str.strip_suffix("\r"))
        .otherwise(pl.col("tok").str.slice(0, pl.col("tok").str.len_chars() - 1))
    )
    df = df.with_columns(body=body)
    quoted = pl.col("body").str.extract_groups(r'(?s)^"((?:[^"]|"")*)"(.*)$')
    df = df.with_columns(q=quoted)
    value = (
        pl.when(pl.col("q").struct.field("1").is_not_null())
        .then(pl.col("q").struct.field("1").str.replace_all('""', '"', literal=True) + pl.col("q").struct.field("2"))
        .otherwise(pl.col("body"))
    )
    df = df.with_columns(value=value)
    recs = df.group_by("rec", maintain_order=True).agg(
        vals=pl.col("value"), blank=(pl.len() == 1) & (pl.col("tok").first().is_in(["\n", "\r\n"]))
    )
    cols = [pl.col("vals").list.get(i, null_on_oob=True).fill_null("").alias(f"c{i}") for i in range(ncols)]
    surplus = pl.col("vals").list.slice(ncols).list.join(sep)
    return recs.select(*cols, nfields=pl.col("vals").list.len().cast(pl.Int64), blank=pl.col("blank"), _surplus=surplus)


def _parse_block(
    block: bytes, columns: list[str], sep: str, first_row: int, max_field_bytes: int, balanced: bool | None = None
) -> tuple[CsvBatch, int]:
    """Parse complete UTF-8 records; return the batch and how many record numbers it used.

    `balanced`: whether the block holds an even number of `"`, when the caller knows (a scan).
    """
    ncols = len(columns)
    marker = None
    if not block.isascii() and not _is_utf8(block):
        block, marker = _mark_undecodable(block)
    parsed = _parse_with_polars(block, ncols, sep, balanced)
    if parsed is None:
        parsed = _parse_with_regex(block.decode("utf-8", "replace"), ncols, sep)
    consumed = parsed.height
    cnames = [f"c{i}" for i in range(ncols)]
    spare = [f"c{i}" for i in range(ncols, ncols + SPARE_COLUMNS)]
    extra = ["_surplus"] if "_surplus" in parsed.columns else spare
    # `fill_null` costs a pass even on a column without nulls (~60 ms per 100k rows x 70
    # columns): only the columns that have any (short rows) take it.
    has_nulls = {c for c in cnames if parsed.get_column(c).null_count()}
    df = parsed.with_row_index("_i").select(
        (pl.col("_i").cast(pl.Int64) + first_row).alias("_row"),
        *[pl.col(c).fill_null("") if c in has_nulls else pl.col(c) for c in cnames],
        "nfields",
        "blank",
        *extra,
    )
    if df.get_column("blank").any():  # a filter copies every column: only when needed
        df = df.filter(~pl.col("blank"))
    undecodable = (
        pl.any_horizontal([pl.col(c).str.contains(marker, literal=True) for c in cnames])
        if marker
        else pl.lit(False)
    )
    # The longest value first (one scalar per column): the per-row test only when one is too long.
    longest = df.select(pl.max_horizontal(pl.col(c).str.len_bytes().max() for c in cnames)).item() if cnames else 0
    too_long = (
        pl.any_horizontal([pl.col(c).str.len_bytes() > max_field_bytes for c in cnames])
        if longest is not None and longest > max_field_bytes
        else pl.lit(False)
    )
    ragged = pl.col("nfields") != ncols
    rule = (
        pl.when(undecodable)
        .then(pl.lit("undecodable"))
        .when(ragged)
        .then(pl.lit("ragged_row"))
        .when(too_long)
        .then(pl.lit("field_too_long"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    reason = (
        pl.when(pl.col("_rule") == "undecodable")
        .then(pl.lit("line contains bytes that are not valid in the file's encoding"))
        .when(pl.col("_rule") == "ragged_row")
        .then(
            pl.format(
                "row has {} fields, the header has {}",
                pl.col("nfields"),
                pl.lit(ncols),
            )
        )
        .when(pl.col("_rule") == "field_too_long")
        .then(pl.lit(f"a value is longer than {max_field_bytes} bytes"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    df = df.with_columns(_rule=rule)
    renames = dict(zip(cnames, columns, strict=True))
    ok = df.get_column("_rule").is_null()
    good = (df if ok.all() else df.filter(ok)).select("_row", *cnames).rename(renames)
    # Worded for the rejected rows only, on contiguous columns (see `explain_rejects`: polars 2.1.0
    # `pl.format` on the parser's multi-chunk columns, issue 10).
    bad = df.filter(~ok).rechunk().with_columns(_reason=reason)
    if "_surplus" not in bad.columns:
        bad = bad.with_columns(_surplus=pl.concat_str([pl.col(c).fill_null("") for c in spare], separator=sep))
    # The surplus fields of a row with too many fields go into its reason, so nothing the
    # user typed silently vanishes from the rejects file.
    surplus = pl.col("_surplus").str.strip_chars_end(sep)
    bad = bad.with_columns(
        _reason=pl.when((pl.col("_rule") == "ragged_row") & (pl.col("nfields") > ncols) & (surplus != ""))
        .then(pl.col("_reason") + pl.lit("; extra fields: ") + surplus.str.slice(0, 200))
        .otherwise(pl.col("_reason"))
    )
    if marker:  # the rejects file shows an undecodable byte as U+FFFD, as a lossy decode would
        bad = bad.with_columns(pl.col(c).str.replace_all(marker, REPLACEMENT, literal=True) for c in cnames)
    bad = bad.select(*REJECT_COLUMNS, *cnames).rename(renames)
    return CsvBatch(frame=good, rejects=bad), consumed


def _is_utf8(block: bytes) -> bool:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mark_undecodable(block: bytes) -> tuple[bytes, str]:
    """A block with invalid UTF-8 -> valid UTF-8 where each run of undecodable bytes is one
    marker character that the block does not otherwise hold, and that marker.

    Only the byte values >= 0x80 can be undecodable, so quotes, separators and line ends stay
    where they were. If every candidate occurs in the block (never seen), U+FFFD is the marker:
    then a U+FFFD the file holds is rejected too, as before.
    """
    text = block.decode("utf-8", "surrogateescape")
    marker = next((m for m in _MARKERS if m not in text), REPLACEMENT)
    return _ESCAPED_RUN.sub(marker, text).encode("utf-8"), marker


@dataclass
class CsvFileSource:
    """A CSV file as a pipeline source (etl.sources.SyncSource)."""

    path: Path
    batch_rows: int = BATCH_ROWS
    skip_rows: int | None = None
    """Lines before the header (--skip-rows); None: a known export's preamble is found and skipped."""

    def __post_init__(self) -> None:
        # Opening sniffs the file: a missing, empty, header-only or binary file fails here, before
        # anything touches the network.
        self.preamble_label: str | None = None
        self._csv = open_csv(self.path, skip_rows=self.skip_rows, find_header=self._find_header)
        self.name = f"csv:{self.path.name}"

    def _find_header(self, lines: Sequence[list[str]]) -> int:
        from etl.formats import builtin_formats, find_header

        found = find_header(lines, builtin_formats(), source=self.path.name)
        if found is None:
            return 0
        self.preamble_label = found.label
        return found.skip

    @property
    def skipped_lines(self) -> int:
        return self._csv.skipped_lines

    def preamble_note(self) -> str | None:
        """One line for the terminal: the lines skipped before the header, and why."""
        n = self._csv.skipped_lines
        if not n:
            return None
        why = f"the {self.preamble_label}'s notes" if self.preamble_label else "--skip-rows"
        return f"skipped {n} preamble line(s) before the header (line {n + 1}): {why}"

    def batches(self) -> Iterator[SourceBatch]:
        # The first batch carries the preamble facts into the report's `source_info` (summed).
        facts = {"preamble_lines": self.skipped_lines, "header_line": self.skipped_lines + 1}
        for batch in self._csv.batches(self.batch_rows):
            yield SourceBatch(batch.frame, batch.rejects, counters=facts if self.skipped_lines else {})
            facts = {}

    @property
    def columns(self) -> list[str]:
        """The header as the reader names it (repeated names renamed `X_2`)."""
        return list(self._csv.columns)

    def sample(self, rows: int = 500) -> pl.DataFrame:
        """About the first `rows` readable records (no `_row`), for format detection."""
        batches = self._csv.batches(rows * 8)  # the first batch is an eighth of the size
        try:
            first = next(batches, None)
        finally:
            batches.close()  # type: ignore[attr-defined]  # a generator: stops its parse worker
        if first is None:
            return pl.DataFrame(schema=dict.fromkeys(self.columns, pl.String))
        return first.frame.drop("_row").head(rows)


def job_mapping(source: CsvFileSource, given: Mapping | None) -> Mapping:
    """The mapping a CSV file gets (`import csv` and csv jobs): `given` (--mapping, the job's
    `mapping`) if any, else the export format recognised from its headers, else a guess from header
    synonyms and values — resolved to the file's columns (etl.formats.decide)."""
    from etl.formats import builtin_formats, decide

    return decide(source.columns, source.sample(), builtin_formats(), given=given, source=source.path.name)


def job_source(spec: JobSpec, settings: Settings, mapping: Mapping) -> CsvFileSource:
    """The source a `source = "csv"` job file describes (`path`, relative to the job file)."""
    if spec.path is None:
        raise ConfigError(f"job {spec.name}: a csv job needs `path`")
    skip = spec.params.get("skip_rows")
    if skip is not None and (isinstance(skip, bool) or not isinstance(skip, int) or skip < 0):
        raise ConfigError(f"job {spec.name}: skip_rows must be a whole number >= 0 (lines before the header)")
    return CsvFileSource(spec.path, skip_rows=skip)
