"""Undo: requests per reverted lead against a rate-limited sandbox, and the time that saves.

Baseline (same run, same sandbox, same budget, same client code): deleting the same number of
leads one `DELETE /api/leads?id=` at a time, 8 in flight, as a script without the batch delete
would. The floor is the batch arithmetic: ceil(n / 50) batch requests plus the reads (1,000 leads
a page) that plan the undo and verify it.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from etl.config import Settings
from etl.extract.csv import CsvFileSource
from etl.load.api import LeadGeniusApi
from etl.load.deletes import DELETE_BATCH
from etl.mapping import Mapping
from etl.pipeline import ImportOptions, run_import
from etl.sandbox.leadgenius.app import create_app
from etl.sandbox.leadgenius.store import OTHER_TENANT, SandboxConfig
from etl.sandbox.server import start_in_thread
from etl.undo import UndoOptions, undo_run


def write_csv(path: Path, n: int, title: str) -> Path:
    path.write_text("firstName,lastName,email,companyName,title\n" + "".join(
        f"F{i},L{i},lead{i}@example.com,Co {i % 50},{title} {i}\n" for i in range(n)))
    return path


def requests_sent(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/__admin/stats").json()["total"])


def other_tenant(base_url: str, d: Path) -> Settings:
    return Settings(base_url=base_url, auth_file=d / "auth-other.json", email=OTHER_TENANT.email,
                    password=OTHER_TENANT.password, state_path=d / "other.db")


def one_by_one(settings: Settings) -> tuple[int, float]:
    """The baseline: one single-id DELETE per lead of the other tenant's client (its own budget)."""

    async def go() -> tuple[int, float]:
        async with LeadGeniusApi(settings, concurrency=8) as api:
            ids = [str(lead["id"]) async for page in api.iter_leads("baseline") for lead in page]
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for chunk in (ids[i::8] for i in range(8)):
                    async def worker(mine: list[str] = chunk) -> None:
                        for lead_id in mine:
                            await api.delete_lead(lead_id)
                    tg.start_soon(worker)
            return api.stats.total, time.perf_counter() - started

    return anyio.run(go)


def run_import_file(settings: Settings, path: Path, mode: str, client: str = "Bench") -> str:
    report = anyio.run(lambda: run_import(settings, CsvFileSource(path), Mapping.builtin("csv"),
                                          ImportOptions(client=client, mode=mode)))  # type: ignore[arg-type]
    assert report.exit_code == 0 and report.run_id
    return report.run_id


def main(quick: bool = False) -> str:
    n = 300 if quick else 1000
    budget, window, latency_ms = 100, 10.0, 30  # 600 requests/min per credential, like a premium-ish key
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        server = start_in_thread(create_app(SandboxConfig(latency_ms=latency_ms)))
        base = server.base_url
        settings = Settings(base_url=base, auth_file=d / "auth.json", email="demo@leadgenius.local",
                            password="demo-password", state_path=d / "state.db")
        try:
            baseline = other_tenant(base, d)
            run_import_file(baseline, write_csv(d / "other.csv", n, "VP"), "insert", client="Baseline")
            created = run_import_file(settings, write_csv(d / "a.csv", n, "VP"), "insert")
            updated = run_import_file(settings, write_csv(d / "b.csv", n, "Head"), "upsert")
            httpx.put(f"{base}/__admin/config", json={"rate_limit_per_min": budget, "rate_window_s": window})
            for label, run_id, kind in (("upsert run: restore every lead", updated, "restored"),
                                        ("import run: delete every lead", created, "deleted")):
                before = requests_sent(base)
                started = time.perf_counter()
                report = anyio.run(lambda rid=run_id: undo_run(settings, rid, UndoOptions()))  # type: ignore[misc]
                elapsed = time.perf_counter() - started
                sent = requests_sent(base) - before
                done = getattr(report.counts, kind)
                assert report.exit_code == 0 and done == n, report.to_dict()
                pages = math.ceil(n / 1000)
                floor = math.ceil(n / DELETE_BATCH) + 2 * pages + 1  # batches, plan + verify reads, company
                rows.append(f"| {label} | {done} | {sent} | {sent / done:.3f} | {floor} | {elapsed:.1f} |")
            base_requests, base_elapsed = one_by_one(baseline)
        finally:
            server.stop()
    undo_delete_s = float(rows[1].split("|")[6])
    return "\n".join([
        "# Undo: requests per reverted lead",
        "",
        f"Sandbox: budget {budget} requests per {window:g} s window per credential "
        f"({budget * 60 / window:.0f}/min), {latency_ms} ms added latency. {n} leads per run.",
        "",
        "| undo of | leads | requests (all, incl. login) | requests per lead | floor | elapsed s |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        f"| baseline: one single-id DELETE per lead, 8 in flight | {n} | {base_requests} | "
        f"{base_requests / n:.3f} | {n} | {base_elapsed:.1f} |",
        "",
        f"Deleting through the batch delete took **{base_elapsed / undo_delete_s:.1f}x** less time than one "
        "request per lead under the same budget (the whole undo, reads and verification included).",
        "Restores go as batch PUTs of 50 and are verified by the same re-read; the floor column counts the "
        "batches, one read to plan and one to verify (1,000 leads a page) and the company look-up.",
    ])
