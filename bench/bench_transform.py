"""Benchmark: extract -> transform -> dedupe -> validate, vectorised vs row-by-row.

Generates a messy CSV in the seeds' format (bench/data/, gitignored): padded values, dot
last names, missing and invalid e-mails, duplicates in another case, quoted commas and
embedded newlines. Reports rows/s both ways (same run, same file) and the peak RSS of a
separate process streaming a 5,000,000-row file (skipped with --quick).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

DATA = Path(__file__).parent / "data"
HEADER = (
    "firstName,lastName,email,companyName,companyDomain,title,linkedinUrl,notes,phone,"
    "aiLeadScore,leadScore,justification,recommendations,sdr_synthesis"
)
FIRST = ["Sarah", "Marcus", "Priya", "Tom", "Elena", "Aisha", "Lucas", "Mei", "Olivia", "Noah", " Grace ", ""]
LAST = ["Chen", "Okafor", "Raman", "Becker", ".", "Rossi", "Bello", "Moreau", "Tanaka", "Grant", "..", ""]
COMPANIES = ["Northwind Analytics", "BrightPath", "Helix Biotech", "Forgeworks, GmbH", "Veranda Hotels", "Kestrel Pay"]
TITLES = ["VP of Sales", "Head of RevOps", "CTO", "  Director, Marketing  ", "", "Account Executive"]


def generate(path: Path, rows: int, chunk: int = 500_000) -> Path:
    """Write a messy `rows`-row CSV (vectorised; deterministic)."""
    if path.exists() and path.stat().st_size > 0 and path.with_suffix(".rows").read_text() == str(rows):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write((HEADER + "\r\n").encode())
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            i = pl.int_range(start, start + n, eager=True).alias("i")
            h = (i * 2654435761) % 1000
            df = pl.DataFrame({"i": i, "h": h})
            first = pl.Series(FIRST).gather(i % len(FIRST))
            last = pl.Series(LAST).gather((i // 7) % len(LAST))
            df = df.with_columns(
                firstName=first,
                lastName=last,
                companyName=pl.Series(COMPANIES).gather(i % len(COMPANIES)),
                title=pl.Series(TITLES).gather((i // 3) % len(TITLES)),
            )
            base = pl.format("person.{}{}@company{}.com", pl.col("i"), pl.lit("x"), pl.col("i") % 5000)
            dup_of = pl.format("PERSON.{}X@COMPANY{}.COM", pl.col("i") - 17, (pl.col("i") - 17) % 5000)
            email = (
                pl.when(pl.col("h") < 20)
                .then(pl.lit(""))
                .when(pl.col("h") < 30)
                .then(pl.format("broken.{}@@x", pl.col("i")))
                .when((pl.col("h") < 60) & (pl.col("i") > 17))
                .then(dup_of)
                .when(pl.col("h") < 160)
                .then(pl.format("  {}  ", base))
                .otherwise(base)
            )
            notes = (
                pl.when(pl.col("h") < 10)
                .then(pl.lit("Call notes:\n- wants SSO"))
                .when(pl.col("h") < 300)
                .then(pl.lit('Met at SaaStr, "hot" lead'))
                .otherwise(pl.lit(""))
            )
            df = df.with_columns(
                email=email,
                companyDomain=pl.format("company{}.com", pl.col("i") % 5000),
                linkedinUrl=pl.format("https://www.linkedin.com/in/p{}", pl.col("i")),
                notes=notes,
                phone=pl.when(pl.col("h") % 3 == 0).then(pl.format("+1 415 555 {}", pl.col("h"))).otherwise(pl.lit("")),
                aiLeadScore=pl.when(pl.col("h") % 2 == 0).then(pl.lit("B")).otherwise(pl.lit("")),
                leadScore=pl.when(pl.col("h") % 2 == 0).then((pl.col("h") % 100).cast(pl.String)).otherwise(pl.lit("")),
                justification=pl.when(pl.col("h") % 4 == 0)
                .then(pl.lit("Budget approved, 40 seats"))
                .otherwise(pl.lit("")),
                recommendations=pl.when(pl.col("h") % 5 == 0).then(pl.lit("Offer a pilot")).otherwise(pl.lit("")),
                sdr_synthesis=pl.when(pl.col("h") % 6 == 0).then(pl.lit("Warm; decision in Q2")).otherwise(pl.lit("")),
            )
            df.select(HEADER.split(",")).write_csv(fh, include_header=False, line_terminator="\r\n")
    path.with_suffix(".rows").write_text(str(rows))
    return path


def run_vectorised(path: Path, batch_rows: int | None = None, stages: dict[str, float] | None = None) -> dict[str, int]:
    """The package's path: stream, transform, dedupe across batches, validate, in batches of
    the size the CLI uses (`etl.extract.csv.BATCH_ROWS`) unless `batch_rows` is given.

    `stages` (optional) receives the seconds this loop spent in each stage.
    "extract+transform+validate" is the time spent waiting for the next batch: blocks are parsed
    and batches transformed and validated on worker threads while this loop dedupes, so only the
    part that does not overlap shows.
    """
    from etl.ahead import map_ahead
    from etl.extract.csv import BATCH_ROWS, CsvBatch, open_csv
    from etl.mapping import Mapping
    from etl.schemas import validate_leads
    from etl.transform import Deduper, TransformResult, transform

    mapping = Mapping.builtin("csv")
    source = open_csv(path)
    dedupe = Deduper()
    counts = {"extracted": 0, "valid": 0, "rejected": 0, "duplicates": 0}
    times = stages if stages is not None else {}
    for key in ("extract+transform+validate", "dedupe"):
        times.setdefault(key, 0.0)

    def transform_batch(batch: CsvBatch) -> TransformResult:
        result = transform(batch.frame, mapping, "acme-corp")
        validate_leads(result.leads)
        return result

    # As etl.pipeline does it: the next batches are parsed, transformed and validated on worker
    # threads while this loop dedupes across batches.
    stream = map_ahead(source.batches(batch_rows or BATCH_ROWS), transform_batch)
    while True:
        t0 = time.perf_counter()
        pair = next(stream, None)
        t1 = time.perf_counter()
        if pair is None:
            times["extract+transform+validate"] += t1 - t0
            break
        batch, result = pair
        kept, dups = dedupe(result.leads)
        t2 = time.perf_counter()
        for key, seconds in zip(("extract+transform+validate", "dedupe"), (t1 - t0, t2 - t1), strict=True):
            times[key] += seconds
        counts["extracted"] += batch.frame.height + batch.rejects.height
        counts["rejected"] += batch.rejects.height + result.rejects.height
        counts["duplicates"] += result.duplicates.height + dups.height
        counts["valid"] += kept.height
    return counts


def run_dry_run(path: Path) -> tuple[dict[str, int], float]:
    """`import csv FILE --dry-run` as the CLI runs it (`etl.pipeline.run_import`): the core path
    plus logging in, the one paginated read of the target, the create/update plan, the rejects
    CSV and the JSON report, against a sandbox started (before the clock) in this process."""
    import anyio

    from etl.config import Settings
    from etl.extract.csv import CsvFileSource
    from etl.log import configure
    from etl.mapping import Mapping
    from etl.pipeline import ImportOptions, run_import
    from etl.sandbox.leadgenius.app import create_app
    from etl.sandbox.leadgenius.store import SandboxConfig
    from etl.sandbox.server import serving

    configure(level="WARNING")  # as `make demo` runs it: no per-batch log lines
    with tempfile.TemporaryDirectory() as tmp, serving(create_app(SandboxConfig())) as server:
        d = Path(tmp)
        settings = Settings(
            base_url=server.base_url,
            auth_file=d / "auth.json",
            email="demo@leadgenius.local",
            password="demo-password",
            state_path=d / "state.db",
        )
        options = ImportOptions(
            client="Acme Corp", dry_run=True, report_path=d / "report.json", rejects_path=d / "rejects.csv"
        )
        started = time.perf_counter()
        report = anyio.run(lambda: run_import(settings, CsvFileSource(path), Mapping.builtin("csv"), options))
        took = time.perf_counter() - started
    c = report.counts
    return {"extracted": c.extracted, "valid": c.created, "rejected": c.rejected, "duplicates": c.duplicates}, took


def _timed(fn: object, *args: object) -> tuple[dict[str, int], float]:
    started = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return out, time.perf_counter() - started


def peak_rss_mb(path: Path) -> tuple[float, float]:
    """Stream `path` in a fresh process; return (peak RSS in MB, seconds)."""
    code = (
        "from pathlib import Path; from bench.bench_transform import run_vectorised; "
        f"run_vectorised(Path({str(path)!r}))"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024, took


def main(quick: bool) -> str:
    from bench.rowwise_baseline import run as run_rowwise
    from etl.mapping import Mapping

    rows = 200_000 if quick else 1_000_000
    path = generate(DATA / f"leads_{rows}.csv", rows)
    size_mb = path.stat().st_size / 1e6
    # The package's imports happen before the clock starts, as the baseline's do.
    import etl.extract.csv
    import etl.schemas
    import etl.transform  # noqa: F401
    from etl.extract.csv import BATCH_ROWS

    stages: dict[str, float] = {}
    vec, vec_s = _timed(run_vectorised, path, None, stages)
    full, full_s = run_dry_run(path)
    base, base_s = _timed(run_rowwise, path, Mapping.builtin("csv"), "acme-corp")
    lines = [
        f"### Transform benchmark: {rows:,} rows ({size_mb:.0f} MB messy CSV, seeds' format)",
        "",
        "| path | seconds | rows/s | valid | rejected | duplicates |",
        "|---|---:|---:|---:|---:|---:|",
        f"| vectorised (polars: extract, transform, dedupe, pandera) | {vec_s:.2f} | {rows / vec_s:,.0f} "
        f"| {vec['valid']:,} | {vec['rejected']:,} | {vec['duplicates']:,} |",
        f"| row-by-row (csv.DictReader, per-row dicts) | {base_s:.2f} | {rows / base_s:,.0f} "
        f"| {base['valid']:,} | {base['rejected']:,} | {base['duplicates']:,} |",
        f"| the CLI's dry run (+ login, target read, plan, rejects CSV, report) | {full_s:.2f} | "
        f"{rows / full_s:,.0f} | {full['valid']:,} | {full['rejected']:,} | {full['duplicates']:,} |",
        "",
        f"**Speed-up: {base_s / vec_s:.1f}×** (target ≥ 10×); the CLI's whole dry run, doing more than the "
        f"row-by-row path: **{base_s / full_s:.1f}×**. All three agree on counts: {vec == base == full}.",
        "",
        f"Vectorised, seconds per stage (batches of {BATCH_ROWS:,} rows, as the CLI reads; time this loop spent "
        "in each stage; extraction, the transform and the payload check of the next batches run on worker threads): "
        + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        + ".",
    ]
    if not quick:
        big = generate(DATA / "leads_5000000.csv", 5_000_000)
        rss, took = peak_rss_mb(big)
        lines += [
            "",
            f"Peak RSS streaming 5,000,000 rows ({big.stat().st_size / 1e9:.2f} GB) in a fresh process: "
            f"**{rss:,.0f} MB** (target < 1,536 MB), {took:.1f} s ({5_000_000 / took:,.0f} rows/s).",
        ]
    else:
        lines += ["", "_5M-row peak-RSS run skipped (--quick)._"]
    return "\n".join(lines)
