"""HubSpot extraction: requests per 1,000 contacts for `full()` and `changed_since()`, against the
floor and against the naive "one request per contact for its company" extractor (computed).

The sandbox runs with rate limits off so that wall time measures our work, not a budget; the
"at 100 req / 10 s" column is what the request count costs under HubSpot's default private-app limit.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from etl.extract.hubspot import ASSOC_BATCH, COMPANY_BATCH, SEARCH_LIMIT, HubSpotExtractor, iso_to_ms
from etl.sandbox.hubspot.app import SANDBOX_TOKEN, create_app
from etl.sandbox.server import serving

TOUCHED = 1_000


def _requests(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k != "retries")


def main(quick: bool) -> str:
    n = 5_000 if quick else 20_000
    with serving(create_app(seed=1)) as srv, httpx.Client(base_url=srv.base_url, timeout=120) as admin:
        started = time.perf_counter()
        admin.post("/__admin/seed", json={"contacts": n, "seed": 1}).raise_for_status()
        seed_s = time.perf_counter() - started
        admin.put("/__admin/config", json={"rate_limit_per_10s": 0, "search_per_s": 0}).raise_for_status()
        state: dict[str, Any] = admin.get("/__admin/state").json()
        primaries = {c["primary"] for c in state["contacts"] if c["primary"]}
        with_company = sum(1 for c in state["contacts"] if c["companies"])

        ex = HubSpotExtractor(SANDBOX_TOKEN, host=srv.base_url, search_per_second=0)
        started = time.perf_counter()
        full_rows = sum(b.frame.height for b in ex.full())
        full_s = time.perf_counter() - started
        full_stats = dict(ex.stats)

        since = datetime.fromtimestamp(
            max(iso_to_ms(c["properties"]["lastmodifieddate"]) for c in state["contacts"]) / 1000, UTC
        )
        touched: list[str] = admin.post("/__admin/touch", json={"n": TOUCHED, "seed": 2}).json()["ids"]
        touched_set = set(touched)
        touched_primaries = {c["primary"] for c in state["contacts"] if c["primary"] and c["id"] in touched_set}
        touched_with_company = sum(1 for c in state["contacts"] if c["companies"] and c["id"] in touched_set)
        ex2 = HubSpotExtractor(SANDBOX_TOKEN, host=srv.base_url, search_per_second=0)
        started = time.perf_counter()
        inc_rows = sum(b.frame.height for b in ex2.changed_since(since, inclusive=False))
        inc_s = time.perf_counter() - started
        inc_stats = dict(ex2.stats)

    full_req = _requests(full_stats)
    full_floor = math.ceil(n / 100) + math.ceil(len(primaries) / COMPANY_BATCH)
    full_naive = math.ceil(n / 100) + with_company
    inc_req = _requests(inc_stats)
    inc_floor = (
        math.ceil(TOUCHED / SEARCH_LIMIT)
        + math.ceil(TOUCHED / ASSOC_BATCH)
        + math.ceil(len(touched_primaries) / COMPANY_BATCH)
        + 1  # the archived listing (one page: none archived)
    )
    inc_naive = math.ceil(TOUCHED / SEARCH_LIMIT) + 2 * touched_with_company  # association + company per contact

    def per_k(req: int, rows: int) -> str:
        return f"{1000 * req / max(rows, 1):.1f}"

    lines = [
        f"# HubSpot extraction — {n:,} adversarial contacts ({len(primaries):,} distinct primary companies)",
        "",
        f"Seeding {n:,} contacts in the sandbox: {seed_s:.2f} s.",
        "",
        "| run | rows | requests | req / 1k contacts | floor | naive (1 req / contact) | wall | at 100 req / 10 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| full() | {full_rows:,} | {full_req} | {per_k(full_req, full_rows)} | {full_floor} | {full_naive:,} "
        f"| {full_s:.2f} s | {full_req / 10:.0f} s |",
        f"| changed_since() after touching {TOUCHED:,} | {inc_rows:,} | {inc_req} | {per_k(inc_req, inc_rows)} "
        f"| {inc_floor} | {inc_naive:,} | {inc_s:.2f} s | {inc_req / 10:.0f} s |",
        "",
        f"- full(): {full_stats}",
        f"- changed_since(): {inc_stats}",
        "- floor: contacts pages ceil(n/100) + company batch reads ceil(distinct primaries/100); incremental: "
        "search pages ceil(k/200) + v4 association reads ceil(k/1000) + company reads + 1 archived-listing page.",
        "- naive: the seed scripts' shape — the contact pages, then one company look-up per contact "
        "(incremental: an association look-up and a company look-up per contact).",
        "- rate limits off in the sandbox: wall time is ours; the last column is the request count under "
        "HubSpot's default budget.",
    ]
    return "\n".join(lines)
