"""Export throughput per format at a realistic page latency, and peak RSS of a 2,000,000-lead export.

Throughput: the sandbox answers each bulk page after `latency_ms` (150 ms by default, a realistic
figure for a 5,000-lead page), so the numbers show what the network allows and how much our own
work per page (JSON -> frame -> file) adds on top of it. The "latency floor" column is the best a
serial pager could do: pages x latency.

Peak RSS: `leadgenius-etl export` in a child process, measured with
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` by a small wrapper process per run, so each number
belongs to one export. Streaming means the 2M-lead export should sit near the small one.
"""

from __future__ import annotations

import os
import resource  # noqa: F401 - used in the wrapper source below; imported here so the module fails early off Unix
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from etl.config import Settings
from etl.export import run_export
from etl.sandbox.leadgenius.app import create_app
from etl.sandbox.leadgenius.store import DEMO_TENANT, SandboxConfig
from etl.sandbox.server import start_in_thread

LATENCY_MS = 150
FORMATS = (".csv", ".parquet", ".jsonl")
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _seed(base_url: str, n: int) -> None:
    with httpx.Client(base_url=base_url, timeout=600) as http:
        http.post("/__admin/reset").raise_for_status()
        step = 250_000  # several calls: each seed request builds its rows in memory at once
        for start in range(0, n, step):
            http.post("/__admin/seed", json={"n": min(step, n - start), "start": start}).raise_for_status()


def _throughput(base_url: str, n: int, tmp: Path) -> list[str]:
    settings = Settings(
        base_url=base_url, auth_file=tmp / "auth.json", api_key=DEMO_TENANT.api_key, user_id=DEMO_TENANT.user_id
    )
    rows = []
    for suffix in FORMATS:
        out = tmp / f"bench{suffix}"
        started = time.perf_counter()
        report = anyio.run(
            lambda out=out: run_export(
                settings, company_id=DEMO_TENANT.company_id, client_id=None, table="enrich", fields=None, out=out
            )
        )
        took = time.perf_counter() - started
        assert report["rows"] == n, report
        floor = report["pages"] * LATENCY_MS / 1000
        rows.append(
            f"| {suffix[1:]} | {n:,} | {report['pages']} | {took:.1f} | {n / took:,.0f} | {floor:.1f} | "
            f"{(took - floor) / report['pages'] * 1000:.0f} | {out.stat().st_size / 1e6:.1f} |"
        )
        out.unlink()
    return rows


def _peak_rss_mb(base_url: str, tmp: Path, suffix: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADGENIUS")}
    env.update(
        LEADGENIUS_BASE_URL=base_url, LEADGENIUS_API_KEY=DEMO_TENANT.api_key, LEADGENIUS_USER_ID=DEMO_TENANT.user_id,
        LEADGENIUS_AUTH_FILE=str(tmp / "auth.json"),
    )
    out = tmp / f"rss{suffix}"
    cmd = [sys.executable, "-m", "etl", "export", "--company-id", DEMO_TENANT.company_id, "--out", str(out), "-q"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], env=env, capture_output=True, text=True, check=True)
    took = time.perf_counter() - started
    rc, kb = done.stdout.split()
    if rc != "0":
        raise RuntimeError(f"export failed ({rc}): {done.stderr[-500:]}")
    out.unlink()
    return int(kb) / 1024, took


def main(quick: bool) -> str:
    n = 50_000 if quick else 200_000
    from etl import log

    log.configure(level="WARNING")
    lines = [
        "# Export",
        "",
        f"Sandbox bulk list with `latency_ms={LATENCY_MS}` per page, 5,000 leads per page, all 35 columns, "
        "in-process `run_export` over loopback HTTP.",
        "",
        "| format | leads | pages | seconds | leads/s | latency floor (s) | our ms/page | file MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = start_in_thread(create_app(SandboxConfig(latency_ms=LATENCY_MS)))
        try:
            _seed(server.base_url, n)
            lines += _throughput(server.base_url, n, tmp)
        finally:
            server.stop()
        if quick:
            lines += ["", "_Peak RSS of a 2,000,000-lead export: skipped with --quick._"]
            return "\n".join(lines)
        lines += [
            "",
            "## Peak RSS (child process, `ru_maxrss`), sandbox latency 0",
            "",
            "| leads | format | peak RSS (MB) | seconds |",
            "|---:|---|---:|---:|",
        ]
        for size in (5_000, 2_000_000):
            server = start_in_thread(create_app(SandboxConfig()))
            try:
                _seed(server.base_url, size)
                for suffix in FORMATS:
                    mb, took = _peak_rss_mb(server.base_url, tmp, suffix)
                    lines.append(f"| {size:,} | {suffix[1:]} | {mb:,.0f} | {took:.1f} |")
            finally:
                server.stop()
    return "\n".join(lines)
