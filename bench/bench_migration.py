"""A full HubSpot -> LeadGenius migration against both rate budgets at once.

The floor is the slower of the two budgets: HubSpot requests / (100 per 10 s) and LeadGenius
requests / (its per-minute budget). A good run takes about that long and no longer.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio
import httpx

from etl.config import Settings
from etl.jobs import JobSpec, run_spec
from etl.sandbox.hubspot.app import SANDBOX_TOKEN
from etl.sandbox.hubspot.app import create_app as hubspot_app
from etl.sandbox.leadgenius.app import create_app as leadgenius_app
from etl.sandbox.leadgenius.store import SandboxConfig
from etl.sandbox.server import start_in_thread

HS_PER_10S = 100


def main(quick: bool = False) -> str:
    contacts, lg_budget, window = (1200, 300, 20.0) if quick else (5000, 1000, 60.0)
    lg = start_in_thread(leadgenius_app(SandboxConfig(rate_limit_per_min=lg_budget, latency_ms=40,
                                                      rate_window_s=window)))
    hs = start_in_thread(hubspot_app())
    httpx.put(f"{hs.base_url}/__admin/config", json={"rate_limit_per_10s": HS_PER_10S, "latency_ms": 40})
    httpx.post(f"{hs.base_url}/__admin/seed", json={"contacts": contacts, "seed": 7, "adversarial": True},
               timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        settings = Settings(base_url=lg.base_url, auth_file=d / "a.json", email="demo@leadgenius.local",
                            password="demo-password", state_path=d / "s.db", hubspot_token=SANDBOX_TOKEN,
                            hubspot_base_url=hs.base_url)
        started = time.perf_counter()
        spec = JobSpec(name="bench", source="hubspot", client="Migration", mode="upsert", concurrency=8)
        report = anyio.run(lambda: run_spec(spec, settings))
        elapsed = time.perf_counter() - started
    lg.stop()
    hs.stop()
    hs_requests = sum(v for k, v in report.source_info["hubspot_requests"].items() if k != "retries")
    lg_requests = report.requests["total"]
    hs_floor = hs_requests / HS_PER_10S * 10
    # the budget renews per window: N requests need ceil(N / budget) - 1 full windows of waiting
    lg_floor = max(0, -(-lg_requests // lg_budget) - 1) * window
    floor = max(hs_floor, lg_floor)
    return "\n".join([
        "# HubSpot -> LeadGenius migration against both rate budgets",
        "",
        f"{contacts:,} adversarial HubSpot contacts; HubSpot {HS_PER_10S} requests / 10 s, LeadGenius {lg_budget} "
        f"requests / {window:.0f} s window, 40 ms latency on both.",
        "",
        "| | HubSpot | LeadGenius |",
        "|---|---:|---:|",
        f"| requests | {hs_requests} | {lg_requests} |",
        f"| requests per 1,000 contacts | {hs_requests / contacts * 1000:.1f} | {lg_requests / contacts * 1000:.0f} |",
        f"| time the budget alone forces | {hs_floor:.1f} s | {lg_floor:.0f} s |",
        "",
        f"Leads created: {report.counts.created:,} (rejected {report.counts.rejected}, duplicates "
        f"{report.counts.duplicates}); confirmed {report.counts.confirmed:,}; 429s from LeadGenius: "
        f"{report.requests.get('throttled_429', 0)}; "
        f"HubSpot retries: {report.source_info['hubspot_requests']['retries']}.",
        "",
        f"Wall time **{elapsed:.1f} s** against a floor of {floor:.0f} s set by the "
        f"{'LeadGenius' if lg_floor >= hs_floor else 'HubSpot'} budget (overhead {elapsed - floor:.1f} s).",
    ])


if __name__ == "__main__":
    print(main(quick=True))
