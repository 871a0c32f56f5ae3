"""Benchmark: the CLI's whole dry run on the shapes users bring, against polars' bare read.

Shapes (issue 11, part 4), each built from the export's real header (tests/exports.py):
- `seeds`: the seeds' 14-column format, nothing quoted but the values that need it;
- `hubspot-quoted`: HubSpot's contacts export, every field quoted (a repeated header, a header
  with quotes);
- `apollo-70`: Apollo's 68-column export plus two custom columns, most of them unmapped;
- `excel-cp1252`: German Outlook/Excel, cp1252 with `;` and CRLF.

For each shape, in the same run: polars' bare `read_csv(infer_schema=False)` of the file, warm, in
this process (the floor); the CLI's `import csv FILE --dry-run` as a user runs it (a new process,
format detection, against a sandbox started here), with its peak RSS; and the same dry run on a
10-row file of the shape (start-up: interpreter, imports, login, the target read). Net = whole
minus start-up. The dry runs alternate with the floor reads, and each is taken twice (best
kept), because the box is shared and noisy; CPU seconds (user + system) are shown too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent

FIRST = ["Sarah", "Jürgen", "Aoife", "Mohammed", "Li", "José", "Anne-Marie", "Zoë", "Raj", "Kim", "Lucas", "Grace"]
LAST = ["Chen", "Müller", "Ní Bhriain", "Al-Farsi", "Wang", "García", "Dupont", "Smith", "Ødegaard", "Patel", "Lee"]
TITLES = ["VP Sales", "Head of RevOps", "Chief Executive Officer", "Founder & CEO", "Directeur commercial", "CTO"]
COMPANIES = ["Northwind Analytics", "Müller & Söhne GmbH", "Acme, Inc.", "Reveal HealthTech", "Café Olé SARL"]
AREAS = ["212", "415", "646", "312", "617", "202", "305", "512", "206", "303", "408", "650", "718", "972"]
COUNTRIES = ["United States", "Germany", "United Kingdom", "France", "United States", "Canada"]


def _people(n: int) -> pl.DataFrame:
    """n distinct people with the values every shape draws from (deterministic, vectorised)."""
    i = pl.int_range(0, n, eager=True)
    df = pl.DataFrame({"i": i}).with_columns(h=(pl.col("i") * 2654435761) % 1_000_003)

    def pick(values: list[str], by: pl.Expr) -> pl.Expr:
        return pl.lit(pl.Series(values)).gather(by % len(values))

    return df.with_columns(
        first=pick(FIRST, pl.col("i")),
        last=pick(LAST, pl.col("i") // 7),
        title=pick(TITLES, pl.col("i") // 3),
        company=pick(COMPANIES, pl.col("i") // 11),
        country=pick(COUNTRIES, pl.col("h")),
        email=pl.format("person.{}@company{}.com", "i", pl.col("i") % 20_000),
        phone=pl.format(
            "+1 {} {} {}", pick(AREAS, pl.col("h")), 200 + pl.col("h") // 7 % 700,
            (pl.col("h") % 10_000).cast(pl.String).str.zfill(4),
        ),
        linkedin=pl.format("http://www.linkedin.com/in/person-{}", "i"),
        website=pl.format("http://www.company{}.com", pl.col("i") % 20_000),
        city=pick(["San Francisco", "München", "London", "Paris", "Toronto"], pl.col("h") // 3),
    )


def _apollo(p: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    from tests.exports import APOLLO

    header = [*APOLLO, "Custom Field 1", "Custom Field 2"]
    known = {
        "First Name": "first", "Last Name": "last", "Title": "title", "Company Name": "company",
        "Company Name for Emails": "company", "Email": "email", "Mobile Phone": "phone",
        "Person Linkedin Url": "linkedin",
        "Website": "website", "Country": "country", "City": "city", "Company Country": "country",
    }  # fmt: skip
    filler = {
        "Email Status": pl.lit("Verified"), "Seniority": pl.lit("Vp"), "Departments": pl.lit("Sales, Marketing"),
        "Industry": pl.lit("information technology & services"), "# Employees": (pl.col("h") % 5000).cast(pl.String),
        "Keywords": pl.lit("saas, b2b, revenue operations, sales intelligence, crm, data enrichment"),
        "Technologies": pl.lit("Salesforce, HubSpot, Google Analytics, Slack, Zoom, AWS, Intercom"),
        "Apollo Contact Id": pl.format("5f{}a9c1", "h"), "Apollo Account Id": pl.format("60{}bb", pl.col("i") % 20_000),
        "Company Linkedin Url": pl.format("http://www.linkedin.com/company/company{}", pl.col("i") % 20_000),
        "Corporate Phone": pl.format("'+1 415 555 {}", (pl.col("h") % 10_000).cast(pl.String).str.zfill(4)),
    }  # fmt: skip
    cols = [
        (pl.col(known[h]) if h in known else filler.get(h, pl.when(pl.col("h") % 3 == 0).then(pl.lit("x"))))
        .fill_null("")
        .alias(f"c{j}")
        for j, h in enumerate(header)
    ]
    return header, p.select(cols)


def _hubspot(p: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    from tests.exports import HUBSPOT

    values = {
        "Record ID": pl.col("i").cast(pl.String), "First Name": pl.col("first"), "Last Name": pl.col("last"),
        "Email": pl.col("email"), "Phone Number": pl.col("phone"), "Contact owner": pl.lit("Dana Rep"),
        "Primary Associated Company ID": (pl.col("i") % 20_000).cast(pl.String),
        "Last Activity Date": pl.lit("2026-11-02 10:14"), "Lead Status": pl.lit("Open"),
        "Marketing contact status": pl.lit("Non-marketing contact"), "Create Date": pl.lit("2026-01-15 09:00"),
        "Associated Company": pl.col("company"), "Job Title": pl.col("title"), "Mobile Phone Number": pl.lit(""),
        "Lifecycle Stage": pl.lit("Lead"), 'Lead "Grade"': pl.lit("B"), "LinkedIn URL": pl.col("linkedin"),
    }  # fmt: skip
    return HUBSPOT, p.select(values[h].alias(f"c{j}") for j, h in enumerate(HUBSPOT))


def _outlook(p: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    from tests.exports import OUTLOOK_DE

    values = {
        "Anrede": pl.lit("Frau"), "Vorname": pl.col("first"), "Nachname": pl.col("last"), "Firma": pl.col("company"),
        "Position": pl.col("title"), "Straße geschäftlich": pl.lit("Hauptstraße 5"), "Ort geschäftlich": pl.col("city"),
        "Postleitzahl geschäftlich": pl.lit("80331"), "Land/Region geschäftlich": pl.lit("Deutschland"),
        "Telefon geschäftlich": pl.lit("089 1234567"), "Mobiltelefon": pl.col("phone"),
        "E-Mail-Adresse": pl.col("email"), "E-Mail-Typ": pl.lit("SMTP"), "Webseite": pl.col("website"),
    }  # fmt: skip
    return OUTLOOK_DE, p.select(values.get(h, pl.lit("")).alias(f"c{j}") for j, h in enumerate(OUTLOOK_DE))


def _seeds(p: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    from bench.bench_transform import HEADER

    header = HEADER.split(",")
    values = {"firstName": "first", "lastName": "last", "email": "email", "companyName": "company",
              "title": "title", "linkedinUrl": "linkedin", "phone": "phone"}  # fmt: skip
    return header, p.select(
        (pl.col(values[h]) if h in values else pl.lit("")).alias(f"c{j}") for j, h in enumerate(header)
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# name -> (columns, separator, quote every field, encoding, line end)
SHAPES: dict[str, tuple[Callable[[pl.DataFrame], tuple[list[str], pl.DataFrame]], str, bool, str, str]] = {
    "seeds": (_seeds, ",", False, "utf-8", "\n"),
    "hubspot-quoted": (_hubspot, ",", True, "utf-8", "\n"),
    "apollo-70": (_apollo, ",", False, "utf-8", "\n"),
    "excel-cp1252": (_outlook, ";", False, "cp1252", "\r\n"),
}


def generate(shape: str, rows: int, chunk: int = 250_000) -> Path:
    """bench/data/<shape>_<rows>.csv (reused when present)."""
    build, sep, quote_all, encoding, eol = SHAPES[shape]
    path = DATA / f"{shape}_{rows}.csv"
    if path.exists() and path.with_suffix(".rows").exists() and path.with_suffix(".rows").read_text() == str(rows):
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for start in range(0, rows, chunk):
            header, df = build(_people(min(chunk, rows - start)).with_columns(pl.col("i") + start))
            if start == 0:
                names = [_quote(h) if quote_all or sep in h or '"' in h else h for h in header]
                fh.write((sep.join(names) + eol).encode(encoding))
            if not quote_all:  # an empty cell is written as nothing, not `""` (HubSpot quotes even those)
                df = df.select(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in df.columns)
            style = "always" if quote_all else "necessary"
            text = df.write_csv(include_header=False, separator=sep, line_terminator=eol, quote_style=style)
            fh.write(text.encode(encoding, "replace"))
    path.with_suffix(".rows").write_text(str(rows))
    return path


def floor_read(path: Path, sep: str, encoding: str) -> tuple[float, float]:
    """polars' bare read, warm (the better of two reads in one fresh process): (wall, CPU) seconds.

    In a child process, so this process never holds a big frame: a child started later would
    inherit that high-water mark into its own peak RSS (Linux carries it across fork and exec)."""
    enc = "utf8" if encoding == "utf-8" else "utf8-lossy"  # polars reads UTF-8 only; cp1252 bytes read lossy
    code = (
        "import sys, time, polars as pl\n"
        "best = (9e9, 9e9)\n"
        "for _ in range(2):\n"
        "    w, c = time.perf_counter(), time.process_time()\n"
        f"    pl.read_csv({str(path)!r}, separator={sep!r}, infer_schema=False, encoding={enc!r})\n"
        "    best = min(best, (time.perf_counter() - w, time.process_time() - c))\n"
        "print(best[0], best[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def _peak_rss_mb(pid: int, done: threading.Event, peak: list[float]) -> None:
    """Poll the child's VmHWM (its own high-water mark, unlike wait4's ru_maxrss, which also holds
    what the parent had when it forked) until it exits."""
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass
        done.wait(0.02)


def dry_run(path: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """`leadgenius-etl import csv PATH --dry-run` in a new process: (wall s, CPU s, peak RSS MB)."""
    cmd = [sys.executable, "-m", "etl", "import", "csv", str(path), "--client", "Bench Shapes", "--dry-run", "-q"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done, peak = threading.Event(), [0.0]
    watcher = threading.Thread(target=_peak_rss_mb, args=(proc.pid, done, peak), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    done.set()
    watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"dry run of {path.name} exited {proc.returncode}: {err[-500:]}")
    return took, usage.ru_utime + usage.ru_stime, peak[0]


def main(quick: bool) -> str:
    from etl.sandbox.leadgenius.app import create_app
    from etl.sandbox.leadgenius.store import SandboxConfig
    from etl.sandbox.server import serving

    rows = 100_000 if quick else 1_000_000
    out = [
        f"### Real shapes: the CLI's whole dry run against polars' bare read, {rows:,} rows",
        "",
        "| shape | MB | polars read s (CPU) | dry run s (CPU) | start-up s | net s | **net / polars** "
        "| net CPU / polars CPU | dry run peak RSS MB (at a quarter of the rows) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, serving(create_app(SandboxConfig())) as server:
        env = {
            **os.environ,
            "LEADGENIUS_BASE_URL": server.base_url,
            "LEADGENIUS_AUTH_FILE": str(Path(tmp) / "auth.json"),
            "LEADGENIUS_ETL_STATE": str(Path(tmp) / "state.db"),
            "LEADGENIUS_EMAIL": "demo@leadgenius.local",
            "LEADGENIUS_PASSWORD": "demo-password",
            "LEADGENIUS_ETL_LOG_LEVEL": "WARNING",
        }
        for shape, (_, sep, _, encoding, _) in SHAPES.items():
            path, tiny = generate(shape, rows), generate(shape, 10)
            runs, floors, starts = [], [], []
            for _ in range(2):  # alternate: floor, start-up, whole
                floors.append(floor_read(path, sep, encoding))
                starts.append(dry_run(tiny, env))
                runs.append(dry_run(path, env))
            floor = min(floors)
            start = min(starts)
            whole = min(runs)
            net, net_cpu = whole[0] - start[0], whole[1] - start[1]
            rss = max(r[2] for r in runs)
            quarter = dry_run(generate(shape, rows // 4), env)[2]  # RSS flat in rows?
            out.append(
                f"| {shape} | {path.stat().st_size / 1e6:.0f} | {floor[0]:.2f} ({floor[1]:.2f}) | {whole[0]:.2f} "
                f"({whole[1]:.2f}) | {start[0]:.2f} | {net:.2f} | **{net / floor[0]:.1f}×** | "
                f"{net_cpu / max(floor[1], 1e-9):.1f}× | {rss:,.0f} ({quarter:,.0f}) |"
            )
            spread = [f"{r[0]:.2f}" for r in runs]
            floor_spread = ", ".join(f"{f[0]:.2f}" for f in floors)
            notes.append(f"{shape}: dry runs {', '.join(spread)} s; polars {floor_spread} s")
    out += [
        "",
        "Aim: net / polars ≤ 8× on every shape, RSS flat in rows. Noise (each measurement twice, best kept): "
        + "; ".join(notes)
        + ".",
    ]
    return "\n".join(out)
