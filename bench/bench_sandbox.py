"""Throughput of the LeadGenius sandbox over loopback (`python -m bench sandbox`).

The sandbox runs in a subprocess (latency 0, unlimited rate) so that the load generator does not
share its interpreter; concurrent httpx.AsyncClient workers send a fixed mix: 50 % GET /api/leads
pages (100 leads each, from a 5,000-lead client), 30 % POST /api/leads (one lead), 20 % GET
/api/clients. The target is at least 500 requests/s overall.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from etl.sandbox.leadgenius.store import DEMO_TENANT
from etl.sandbox.server import free_port

ROOT = Path(__file__).resolve().parents[1]


def _cache_missing_sniffio() -> None:
    """Without sniffio installed, httpcore retries `import sniffio` on every async lock operation.

    Each failed import walks sys.path (~0.2 ms); that, not the sandbox, capped this load generator
    at ~150 req/s. Caching the negative import result (what Python does for `None` in sys.modules)
    makes httpcore take its asyncio default at once. Harmless when sniffio is installed.
    """
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
TARGET_RPS = 500
MIX = ("leads", "post", "leads", "clients", "leads", "post", "leads", "clients", "leads", "post")


@dataclass
class RouteStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def _start_server(port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "etl.sandbox.leadgenius", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/__admin/config", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox exited: {proc.stderr.read() if proc.stderr else b''!r}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sandbox did not start")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the load generator too when installed (uvicorn[standard]); it halves loop overhead."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to tell our cost from a busy machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Measure:
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None


async def _load(
    base_url: str, total: int, concurrency: int, server_pid: int
) -> tuple[dict[str, RouteStats], Measure]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await client.post("/__admin/seed", json={"client": "Bench Co", "n": 5000})
        r = await client.post("/api/auth", json={"username": DEMO_TENANT.email, "password": DEMO_TENANT.password})
        headers = {"Authorization": f"Bearer {r.json()['tokens']['accessToken']}"}
        page_tokens: list[str | None] = [None]
        while True:  # every page start of the client, so GETs read all over the collection
            params: dict[str, Any] = {"client_id": "bench-co", "limit": 100}
            if page_tokens[-1]:
                params["nextToken"] = page_tokens[-1]
            token = (await client.get("/api/leads", params=params, headers=headers)).json()["nextToken"]
            if not token:
                break
            page_tokens.append(token)

        stats = {name: RouteStats() for name in ("GET /api/leads", "POST /api/leads", "GET /api/clients")}
        counter = iter(range(total))

        async def one(i: int, client: httpx.AsyncClient = client) -> None:
            kind = MIX[i % len(MIX)]
            started = time.perf_counter()
            if kind == "leads":
                route = "GET /api/leads"
                params = {"client_id": "bench-co", "limit": 100}
                token = page_tokens[i % len(page_tokens)]
                if token:
                    params["nextToken"] = token
                resp = await client.get("/api/leads", params=params, headers=headers)
                ok = resp.status_code == 200
            elif kind == "post":
                route = "POST /api/leads"
                lead = {"client_id": "bench-co", "email": f"bench{i}@example.com", "firstName": "Bench",
                        "lastName": "Mark", "companyName": "Bench Co"}
                resp = await client.post("/api/leads", json=lead, headers=headers)
                ok = resp.status_code == 201
            else:
                route = "GET /api/clients"
                resp = await client.get("/api/clients", headers=headers)
                ok = resp.status_code == 200
            stats[route].latencies.append(time.perf_counter() - started)
            if not ok:
                stats[route].errors += 1

        async def worker() -> None:
            # One single-connection client per worker: httpx's pool scans every connection on each
            # request, which with one shared 32-connection pool costs more than the sandbox's answer.
            async with httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=1),
                                         timeout=30) as own:
                for i in counter:
                    await one(i, own)

        # warm up connections and code paths, then measure
        await asyncio.gather(*(one(i) for i in range(concurrency)))
        for s in stats.values():
            s.latencies.clear()
            s.errors = 0
        measure = Measure()
        server_before = _cpu_seconds(server_pid)
        cpu_before = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measure.wall = time.perf_counter() - started
        measure.client_cpu = time.process_time() - cpu_before
        server_after = _cpu_seconds(server_pid)
        if server_before is not None and server_after is not None:
            measure.server_cpu = server_after - server_before
        return stats, measure


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(quick: bool) -> str:
    total = 2000 if quick else 10000
    concurrency = 32
    _cache_missing_sniffio()
    port = free_port()
    proc = _start_server(port)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            stats, measure = runner.run(_load(f"http://127.0.0.1:{port}", total, concurrency, proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    wall = measure.wall
    rows = ["| route | requests | errors | req/s | p50 ms | p95 ms |", "|---|---:|---:|---:|---:|---:|"]
    all_lat: list[float] = []
    errors = 0
    for route, s in stats.items():
        all_lat.extend(s.latencies)
        errors += s.errors
        rows.append(f"| {route} | {len(s.latencies)} | {s.errors} | {len(s.latencies) / wall:,.0f} | "
                    f"{statistics.median(s.latencies) * 1000:.1f} | {_pct(s.latencies, 0.95):.1f} |")
    overall = len(all_lat) / wall
    rows.append(f"| **all** | {len(all_lat)} | {errors} | **{overall:,.0f}** | "
                f"{statistics.median(all_lat) * 1000:.1f} | {_pct(all_lat, 0.95):.1f} |")
    n = len(all_lat)
    capacity = n / measure.server_cpu if measure.server_cpu else None
    best = max(overall, capacity or 0.0)
    verdict = "meets" if best >= TARGET_RPS else "DOES NOT meet"
    cpu_lines = [f"- load generator CPU: {measure.client_cpu * 1000 / n:.2f} ms per request"]
    if capacity is not None and measure.server_cpu is not None:
        cpu_lines.insert(0, f"- sandbox CPU: {measure.server_cpu * 1000 / n:.2f} ms per request, i.e. "
                            f"**{capacity:,.0f} req/s per core** (what it serves when it has a core to itself)")
    loadavg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (
        f"## LeadGenius sandbox throughput\n\n"
        f"{total} requests, {concurrency} concurrent httpx.AsyncClient connections over loopback; sandbox in a "
        f"subprocess (uvicorn, one worker, latency 0, unlimited rate), client `bench-co` seeded with 5,000 leads; "
        f"mix 50 % GET /api/leads (limit 100), 30 % POST /api/leads, 20 % GET /api/clients; {os.cpu_count()} CPUs "
        f"shared by server and load generator.\n\n"
        f"Overall **{overall:,.0f} req/s** wall clock in {wall:.2f} s (1-min load average {loadavg:.1f} "
        f"on {os.cpu_count()} CPUs: other work on the machine slows both sides).\n\n"
        + "\n".join(cpu_lines)
        + f"\n\n{verdict.capitalize()} the {TARGET_RPS} req/s target "
        f"(best of wall-clock and per-core capacity: {best:,.0f} req/s).\n"
    )
    return header + "\n" + "\n".join(rows)


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv))
