"""The run report (SPEC Part B), the rejects file, the exit-code decision and the terminal summary."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl

from etl.errors import InputFileError
from etl.log import redact_text

REJECT_COLUMNS: dict[str, pl.DataType] = {"_row": pl.Int64(), "_reason": pl.String(), "_rule": pl.String()}
"""What every rejects frame starts with, before the source's own columns (all String): `_row`
(1-based input row), `_reason` (one line for people, SPEC Part B) and `_rule` (a stable id)."""


def no_rejects() -> pl.DataFrame:
    """A rejects frame without rows, for a source that never rejects a row itself."""
    return pl.DataFrame(schema=REJECT_COLUMNS)
if TYPE_CHECKING:
    from etl.pipeline import RunResult

Progress = Callable[[str, int], None]
"""A run's progress callback: (event, n), e.g. ("extracted", 100_000), ("created", 1), ("429s", 1)."""


@dataclass
class Counts:
    extracted: int = 0
    valid: int = 0
    rejected: int = 0
    duplicates: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    confirmed: int = 0
    missing: int = 0


@dataclass
class RunReport:
    dry_run: bool
    client_id: str | None
    mode: str
    source: str
    run_id: str | None = None
    counts: Counts = field(default_factory=Counts)
    requests: dict[str, Any] = field(default_factory=lambda: {"total": 0, "by_status": {}})
    source_requests: dict[str, Any] = field(default_factory=dict)  # etl.sources.source_requests; {} for a file
    duration_s: float = 0.0
    target: dict[str, Any] = field(default_factory=dict)
    rejects_by_rule: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    reconcile: dict[str, Any] = field(default_factory=dict)
    source_info: dict[str, Any] = field(default_factory=dict)
    mapping: dict[str, Any] = field(default_factory=dict)  # Mapping.report_dict(): what fed each field
    exit_code: int | None = None
    error: str | None = None  # what stopped the run early (error_line); None when it ran to the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add_rejects(self, rejects: pl.DataFrame) -> None:
        self.counts.rejected += rejects.height
        if rejects.height and "_rule" in rejects.columns:
            for rule, n in rejects.group_by("_rule").len().iter_rows():
                self.rejects_by_rule[str(rule)] = self.rejects_by_rule.get(str(rule), 0) + int(n)


def decide_exit_code(report: RunReport, *, strict: bool) -> int:
    """SPEC Part B: 0 all valid leads confirmed (dry: report written); 1 some failed/missing or
    (strict) rejected, or (a sync with on_archive = "delete") leads left undeleted. 2 and 3 come from
    errors raised before a report exists."""
    c = report.counts
    if strict and c.rejected:
        return 1
    if report.dry_run:
        return 0
    if report.source_info.get("delete_failed"):  # on_archive = "delete": leads that should be gone are still there
        return 1
    expected = c.valid - c.duplicates
    if c.failed or c.missing or c.confirmed < expected:
        return 1
    return 0


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # a report holds no secret: the usual file mode, not mkstemp's 0600
    with os.fdopen(fd, "w") as fh:
        fh.write(redact_text(json.dumps(data, indent=2, default=str)))
        fh.write("\n")
    os.replace(tmp, path)


def write_reports(result: RunResult, *, report_path: Path | None, html_path: Path | None) -> None:
    """The one writer of a run's report files: the JSON report and the HTML report."""
    if report_path:
        write_json_atomic(report_path, result.report.to_dict())
    if html_path:
        from etl.report_html import render_html

        html_path.parent.mkdir(parents=True, exist_ok=True)
        html = render_html(result.report.to_dict(), result.rejects_sample, result.fill_rates, result.mapping)
        html_path.write_text(html, encoding="utf-8")


class RejectsWriter:
    """Appends rejected rows: original columns, then `_row`, `_reason` (and `_rule`)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self._columns: list[str] | None = None
        self.frames: list[pl.DataFrame] = []  # a bounded sample for the HTML report
        self._sampled = 0

    def write(self, rejects: pl.DataFrame) -> None:
        if rejects.height == 0:
            return
        if self._sampled < 2000:
            self.frames.append(rejects.head(2000 - self._sampled))
            self._sampled += min(rejects.height, 2000 - self._sampled)
        if self.path is None:
            return
        tail = [c for c in REJECT_COLUMNS if c in rejects.columns]
        if self._columns is None:
            self._columns = [c for c in rejects.columns if c not in tail] + tail
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "wb")  # noqa: SIM115 - kept open across batches
            except OSError as exc:
                raise InputFileError(f"cannot write the rejects file {self.path}: {exc.strerror}") from None
            header = True
        else:
            header = False
        frame = rejects.select([pl.col(c) if c in rejects.columns else pl.lit(None).alias(c) for c in self._columns])
        assert self._fh is not None
        frame.cast(pl.String).write_csv(self._fh, include_header=header)

    def sample(self) -> pl.DataFrame:
        return pl.concat(self.frames, how="diagonal_relaxed") if self.frames else pl.DataFrame()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self.path is not None:
            # An empty rejects file with the SPEC columns, so scripts can always read it.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("_row,_reason\n")


def summary_table(report: RunReport) -> Any:
    """A rich Table of the counts, for the terminal."""
    from rich.table import Table

    verb = "would " if report.dry_run else ""
    title = f"{'DRY RUN — ' if report.dry_run else ''}{report.source} → {report.client_id or '?'} ({report.mode})"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("leads", justify="right")
    c = report.counts
    rows: list[tuple[str, int]] = [
        ("rows read", c.extracted),
        ("valid", c.valid),
        ("rejected", c.rejected),
        ("duplicates in input", c.duplicates),
        (f"{verb}create", c.created),
        (f"{verb}update", c.updated),
        ("unchanged", c.unchanged),
    ]
    if not report.dry_run:
        rows += [("failed", c.failed), ("confirmed in target", c.confirmed), ("missing", c.missing)]
    for label, n in rows:
        table.add_row(label, f"{n:,}")
    for label, n in request_rows(report):
        table.add_row(label, f"{n:,}")
    table.add_row("duration", f"{report.duration_s:.1f} s")
    return table


def request_rows(report: RunReport) -> list[tuple[str, int]]:
    """The summary's requests rows: one per API, the LeadGenius target's first (pure)."""
    rows = [("LeadGenius requests", int(report.requests.get("total", 0)))]
    source = report.source_requests
    if source.get("api"):
        rows.append((f"{source['api']} requests (source)", int(source.get("total", 0))))
    return rows


def mapping_table(info: dict[str, Any]) -> Any:
    """A rich Table of `Mapping.report_dict()`: LeadGenius field <- source column(s), a sample.
    Column names and values come from the file: escaped, so `[b]` in a header is text, not markup."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("LeadGenius field")
    table.add_column("← source column(s)")
    table.add_column("sample")
    guessed = info.get("guessed") or {}
    for target, cols in (info.get("fields") or {}).items():
        how = f" (by {guessed[target]})" if target in guessed else ""
        sample = str((info.get("samples") or {}).get(target) or "")
        sample = sample[:60] + ("…" if len(sample) > 60 else "")
        table.add_row(escape(target), escape(", ".join(cols)) + how, escape(sample))
    # Columns kept as labelled lines in notes, and those read to clean a field, are not dropped either.
    note_cols = [c for n in info.get("notes") or [] for c in n["column"][:1]]
    if note_cols:
        table.add_row("[dim]notes, one line each[/dim]", f"[dim]{escape(', '.join(note_cols))}[/dim]", "")
    for hint, cols in (info.get("hints") or {}).items():
        label = "(country: phone region)" if hint == "country" else f"({hint})"
        table.add_row(f"[dim]{escape(label)}[/dim]", f"[dim]{escape(', '.join(cols))}[/dim]", "")
    return table
