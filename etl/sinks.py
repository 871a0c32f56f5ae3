"""File sinks for `leadgenius-etl export`: CSV, Parquet and JSONL, streamed page by page.

Pure decisions first (format from suffix, column order, formula neutralisation, typing), then the
three writers. Every writer streams (bounded memory whatever the export size) into a temp file in
the target's directory and `os.replace`s it into place only when the export finished: an interrupted
export never leaves a file, or half a file, at the target path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import polars as pl

from etl.errors import InputFileError, UsageError
from etl.fields import EXPORT_COLUMNS

Format = Literal["csv", "parquet", "jsonl"]

SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TIMESTAMP_COLUMNS: tuple[str, ...] = ("createdAt", "updatedAt")
# ISO 8601 as the API writes it ("2026-02-03T10:11:12.345Z"); offsets ("+02:00") are accepted too.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
# OWASP CSV injection: a spreadsheet treats a cell starting with one of these as a formula.
FORMULA_PREFIX = r"^[=+\-@\t\r]"
# Parquet row groups of ~50k rows: big enough to compress and scan well, small enough to stay bounded.
PARQUET_ROW_GROUP_ROWS = 50_000


# --- pure decisions ---------------------------------------------------------------------------


def format_for(path: Path) -> Format:
    """The export format named by the file's suffix; anything else is a usage error (exit 2)."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(s for s in SUFFIXES if s != ".ndjson")
        shown = path.suffix or "no suffix"
        raise UsageError(f"--out {path.name}: unknown export format ({shown}); use one of {known}")
    return fmt


def export_columns(fields: Sequence[str] | None) -> list[str]:
    """Output columns: every lead field in `EXPORT_COLUMNS` order, or exactly `fields` plus `id` first.

    A field LeadGenius does not have is a usage error: the server would silently project it away and
    the user would get an empty column without knowing why.
    """
    if not fields:
        return list(EXPORT_COLUMNS)
    wanted = [f.strip() for f in fields if f.strip()]
    unknown = [f for f in wanted if f not in EXPORT_COLUMNS]
    if unknown:
        raise UsageError(f"--fields: unknown lead field(s) {', '.join(unknown)}; known: {', '.join(EXPORT_COLUMNS)}")
    out = ["id"]
    for f in wanted:
        if f not in out:
            out.append(f)
    return out


def page_frame(items: Sequence[dict[str, Any]], columns: Sequence[str]) -> pl.DataFrame:
    """One API page as a frame of String columns in `columns` order; missing keys become null."""
    schema = {c: pl.String for c in columns}
    if not items:
        return pl.DataFrame(schema=schema)
    # strict=False: a number or bool the API might send becomes its string, never an error.
    return pl.from_dicts(items, schema=schema, strict=False)


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix `'` to String cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR)."""
    cols = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_PREFIX)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in cols
    )


def typed_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Parquet types: `createdAt` / `updatedAt` as UTC timestamps (μs), everything else stays a string."""
    return frame.with_columns(
        pl.col(c).str.to_datetime(format=TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False)
        for c in TIMESTAMP_COLUMNS
        if c in frame.columns
    )


def unparsed_timestamps(raw: pl.DataFrame, typed: pl.DataFrame) -> int:
    """Cells that held text but did not parse as a timestamp (reported, never silently lost)."""
    return sum(
        raw.select((pl.col(c).is_not_null() & typed.get_column(c).is_null()).sum()).item()
        for c in TIMESTAMP_COLUMNS
        if c in raw.columns
    )


# --- writers ----------------------------------------------------------------------------------


class FileSink:
    """Base: a temp file next to the target, replaced into place on `commit()`, removed on `abort()`."""

    format: Format

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self.rows = 0
        self.bytes = 0
        self.unparsed_timestamps = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        except OSError as exc:
            raise InputFileError(f"cannot write {path}: {exc.strerror}") from None
        self.tmp = Path(tmp)
        self._fh: IO[bytes] = os.fdopen(fd, "wb")

    def write(self, frame: pl.DataFrame) -> None:
        """Append one page (String columns in `self.columns` order)."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush whatever the format still buffers (Parquet footer, empty-file header)."""

    def commit(self) -> None:
        self._finish()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.chmod(self.tmp, 0o644)  # mkstemp creates 0600; an export is an ordinary file
        self.bytes = self.tmp.stat().st_size
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class CsvSink(FileSink):
    format: Format = "csv"

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        super().__init__(path, columns)
        self._header = True

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        neutralise_formulas(frame).write_csv(self._fh, include_header=self._header)
        self._header = False
        self.rows += frame.height

    def _finish(self) -> None:
        if self._header:  # nothing written: still a valid CSV with the header
            pl.DataFrame(schema={c: pl.String for c in self.columns}).write_csv(self._fh, include_header=True)


class JsonlSink(FileSink):
    format: Format = "jsonl"

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        frame.write_ndjson(self._fh)
        self.rows += frame.height


class ParquetSink(FileSink):
    """One row group per ~50k rows via pyarrow's ParquetWriter; memory bounded by that buffer."""

    format: Format = "parquet"

    def __init__(self, path: Path, columns: Sequence[str], *, row_group_rows: int = PARQUET_ROW_GROUP_ROWS) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path, columns)
        self.row_group_rows = row_group_rows
        self.schema = pa.schema(
            [pa.field(c, pa.timestamp("us", tz="UTC") if c in TIMESTAMP_COLUMNS else pa.string()) for c in self.columns]
        )
        self._writer = pq.ParquetWriter(self._fh, self.schema, compression="zstd")
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        typed = typed_frame(frame)
        self.unparsed_timestamps += unparsed_timestamps(frame, typed)
        self._buffer.append(typed)
        self._buffered += typed.height
        self.rows += typed.height
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pl.concat(self._buffer, how="vertical").to_arrow().cast(self.schema)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._buffer, self._buffered = [], 0

    def _finish(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the temp file goes away anyway
            self._writer.close()
        super().abort()


_SINKS: dict[Format, type[FileSink]] = {"csv": CsvSink, "jsonl": JsonlSink, "parquet": ParquetSink}


@contextmanager
def open_sink(path: Path, columns: Sequence[str]) -> Iterator[FileSink]:
    """The sink for `path`'s format. Committed (atomically in place) only if the block finishes;
    any exception, Ctrl-C included, removes the temp file and leaves the target path untouched."""
    sink = _SINKS[format_for(path)](path, columns)
    try:
        yield sink
    except BaseException:
        sink.abort()
        raise
    try:
        sink.commit()
    except BaseException:
        sink.abort()
        raise


__all__ = [
    "FORMULA_PREFIX",
    "CsvSink",
    "FileSink",
    "Format",
    "JsonlSink",
    "ParquetSink",
    "export_columns",
    "format_for",
    "neutralise_formulas",
    "open_sink",
    "page_frame",
    "typed_frame",
]
