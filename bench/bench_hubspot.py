"""HubSpot extraction: requests per 1,000 contacts for `full()` and `changed_since()`, against the
floor and against the naive "one request per contact for its company" extractor (computed); then
the requests of one incremental run as a function of changed contacts, changed companies and the
contacts the lookback re-reads; then what that re-read costs in LeadGenius writes (a real sync,
both sandboxes).

The sandbox runs with rate limits off so that wall time measures our work, not a budget; the
"at 100 req / 10 s" column is what the request count costs under HubSpot's default private-app limit.
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from etl.config import Settings, state_location
from etl.extract.hubspot import ASSOC_BATCH, COMPANY_BATCH, SEARCH_LIMIT, HubSpotExtractor, iso_to_ms
from etl.sandbox.hubspot.app import SANDBOX_TOKEN, create_app
from etl.sandbox.server import serving

TOUCHED = 1_000


def _requests(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k not in ("retries", "throttled_429"))


def _high_water(state: dict[str, Any]) -> datetime:
    stamps = [iso_to_ms(c["properties"]["lastmodifieddate"]) for c in state["contacts"]]
    stamps += [iso_to_ms(c["properties"]["hs_lastmodifieddate"]) for c in state["companies"]]
    return datetime.fromtimestamp(max(stamps) / 1000, UTC)


PER_10S = 100  # HubSpot's default private-app budget


def paced_vs_waited(sizes: tuple[int, ...]) -> list[str]:
    """The same full() read under 100 requests / 10 s: paced from the X-HubSpot-RateLimit-* headers,
    and the old way (send until a 429, wait its Retry-After). Same sandbox, same data, same run."""
    lines = [
        f"## A full read under HubSpot's {PER_10S} requests / 10 s: paced from the headers vs waiting out 429s",
        "",
        "| contacts | pacing | requests (logical) | HTTP requests | 429s | wall | floor | wall / floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        with serving(create_app(seed=5)) as srv, httpx.Client(base_url=srv.base_url, timeout=120) as admin:
            admin.post("/__admin/seed", json={"contacts": n, "seed": 5}).raise_for_status()
            admin.put("/__admin/config", json={"rate_limit_per_10s": PER_10S, "search_per_s": 0}).raise_for_status()
            for label, paced in (("429s waited out (before)", False), ("from the headers (after)", True)):
                time.sleep(10.5)  # an empty window for each run
                before = admin.get("/__admin/stats").json()
                ex = HubSpotExtractor(SANDBOX_TOKEN, host=srv.base_url, search_per_second=0, pace_from_headers=paced)
                started = time.perf_counter()
                rows = sum(b.frame.height for b in ex.full())
                wall = time.perf_counter() - started
                after = admin.get("/__admin/stats").json()
                assert rows == n
                req = _requests(ex.stats)
                floor = (math.ceil(req / PER_10S) - 1) * 10.0  # the last window's first send, at the earliest
                ratio = f"{wall / floor:.2f}" if floor else "-"
                lines.append(
                    f"| {n:,} | {label} | {req} | {after['total'] - before['total']} | {ex.stats['throttled_429']} "
                    f"| {wall:.1f} s | {floor:.0f} s | {ratio} |"
                )
    lines += [
        "",
        "- floor: a rolling window lets N requests start no sooner than (ceil(N/100) - 1) x 10 s after the first.",
        "- HTTP requests: what the sandbox answered, 429s included; logical requests do not count retries.",
        "- below 100 requests the limit never bites: both ways are the same read.",
    ]
    return lines


def incremental_grid(n: int) -> list[str]:
    """Requests of one `changed_since()` run for k changed contacts, m renamed companies and r
    contacts changed before the mark that the lookback reads again."""
    scenarios = [(0, 0, 0), (200, 0, 0), (1_000, 0, 0), (5_000, 0, 0), (1_000, 1, 0), (1_000, 10, 0),
                 (1_000, 100, 0), (1_000, 0, 1_000), (1_000, 0, 5_000)]
    kinds = ("search", "assoc_batch", "companies_batch", "company_search", "company_assoc_batch", "contacts_batch",
             "archived_page")
    lines = [
        f"## One incremental run: requests by what changed ({n:,} contacts in the portal)",
        "",
        "| changed contacts k | renamed companies m | re-read by the lookback r | rows | "
        + " | ".join(kinds) + " | total | floor |",
        "|---:|---:|---:|---:|" + "---:|" * (len(kinds) + 2),
    ]
    with serving(create_app(seed=3)) as srv, httpx.Client(base_url=srv.base_url, timeout=120) as admin:
        for k, m, r in scenarios:
            admin.post("/__admin/reset").raise_for_status()
            admin.post("/__admin/seed", json={"contacts": n, "seed": 3, "adversarial": False}).raise_for_status()
            admin.put("/__admin/config", json={"rate_limit_per_10s": 0, "search_per_s": 0}).raise_for_status()
            state = admin.get("/__admin/state").json()
            time.sleep(0.01)
            lookback_start = datetime.now(UTC)
            ids = [c["id"] for c in state["contacts"]]
            if r:  # changed (and synced) before the mark, inside the lookback
                admin.post("/__admin/touch", json={"ids": ids[:r], "seed": 4}).raise_for_status()
            time.sleep(0.01)
            mark = max(_high_water(admin.get("/__admin/state").json()), lookback_start)
            time.sleep(0.01)
            if k:
                admin.post("/__admin/touch", json={"ids": ids[-k:], "seed": 5}).raise_for_status()
            live = [co for co in state["companies"] if not co["deleted"]][:m]
            if m:
                admin.post("/__admin/companies/rename", json={"inputs": [
                    {"id": co["id"], "properties": {"name": f"{co['properties']['name']} renamed"}} for co in live
                ]}).raise_for_status()
            since = lookback_start if r else mark
            ex = HubSpotExtractor(SANDBOX_TOKEN, host=srv.base_url, search_per_second=0)
            rows = sum(b.frame.height for b in ex.changed_since(since, inclusive=False))
            read = {c["id"] for c in state["contacts"]} & set(ids[:r] + ids[-k:] if k else ids[:r])
            renamed = {co["id"] for co in live}
            by_company = rows - len(read)  # their other primary contacts (tests/hubspot prove which)
            primaries = {c["primary"] for c in state["contacts"] if c["primary"] and c["id"] in read}
            floor = (max(1, math.ceil(len(read) / SEARCH_LIMIT)) + math.ceil(len(read) / ASSOC_BATCH)
                     + math.ceil(len(primaries - renamed) / COMPANY_BATCH) + 1
                     + (math.ceil(m / ASSOC_BATCH) + math.ceil(by_company / 100) if m else 0) + 1)
            lines.append(f"| {k:,} | {m} | {r:,} | {rows:,} | " + " | ".join(str(ex.stats[x]) for x in kinds)
                         + f" | {_requests(ex.stats)} | {floor} |")
    lines += [
        "",
        "- rows: contacts read (k + r + the primary contacts of the renamed companies not read already).",
        "- floor: search pages max(1, ceil((k+r)/200)) + v4 contact->company reads ceil((k+r)/1000) + company "
        "batch reads ceil(distinct primaries/100) + 1 company search page + (m > 0: v4 company->contact reads "
        "ceil(m/1000) + contact batch reads ceil(their other primary contacts/100)) + 1 archived-listing page.",
        "- a renamed company's own values come from the company search: it is never batch-read again.",
        "- the lookback costs ceil(r/200) search pages and ceil(r/1000) association reads for the r changes it "
        "re-reads (and the company reads of their primaries); with HubSpot's 4-5 searches/s a 10-minute "
        "lookback over a portal changing 100 contacts a minute adds 5 searches, about 1 s.",
    ]
    return lines


def overlap_writes(n: int, touched: int) -> list[str]:
    """A real sync, three runs: the first imports, the second sends the touched contacts, the third
    re-reads them (inside the lookback) and must write nothing."""
    from etl.hubspot_sync import DEFAULT_LOOKBACK
    from etl.jobs import JobSpec, run_spec
    from etl.sandbox.leadgenius.app import create_app as create_lg

    with tempfile.TemporaryDirectory() as tmp, serving(create_app(seed=4)) as hs, serving(create_lg()) as lg, \
            httpx.Client(base_url=hs.base_url, timeout=120) as admin, \
            httpx.Client(base_url=lg.base_url, timeout=120) as lg_admin:
        admin.post("/__admin/seed", json={"contacts": n, "seed": 4, "adversarial": False}).raise_for_status()
        admin.put("/__admin/config", json={"rate_limit_per_10s": 0, "search_per_s": 0}).raise_for_status()
        settings = Settings(
            base_url=lg.base_url, auth_file=Path(tmp) / "auth.json", email="demo@leadgenius.local",
            password="demo-password", hubspot_token=SANDBOX_TOKEN, hubspot_base_url=hs.base_url,
            **state_location(str(Path(tmp) / "state.db")),
        )
        spec = JobSpec(name="bench", source="hubspot", client="Bench", mode="upsert")
        rows: list[str] = []

        def run(label: str) -> None:
            before = lg_admin.get("/__admin/stats").json()["requests"]
            started = time.perf_counter()
            report = anyio.run(lambda: run_spec(spec, settings))
            took = time.perf_counter() - started
            after = lg_admin.get("/__admin/stats").json()["requests"]

            def delta(route: str) -> int:
                return sum(after.get(route, {}).values()) - sum(before.get(route, {}).values())

            hs_req = _requests(report.source_info["hubspot_requests"])
            rows.append(f"| {label} | {report.counts.extracted:,} | {report.counts.updated:,} | "
                        f"{delta('POST /api/leads')} | {delta('PUT /api/leads')} | {delta('GET /api/leads')} "
                        f"| {hs_req} "
                        f"| {took:.2f} s |")

        run("1. first sync (full)")
        ids = [c["id"] for c in admin.get("/__admin/state").json()["contacts"]][:touched]
        admin.post("/__admin/touch", json={"ids": ids, "seed": 6}).raise_for_status()
        run(f"2. after touching {touched:,}")
        run("3. at once again: the lookback re-reads them")
    return [
        f"## What the lookback's re-read costs in LeadGenius writes ({n:,} contacts, lookback "
        f"{int(DEFAULT_LOOKBACK.total_seconds() // 60)} min)",
        "",
        "| run | contacts read | leads updated | POST /api/leads | PUT /api/leads | GET /api/leads (reads) "
        "| HubSpot requests | wall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "- run 3 reads again every contact run 2 sent (they changed inside the lookback) and writes nothing: "
        "the content hash in the ledger says they are unchanged. Its only LeadGenius cost is what every run "
        "reads: the client before planning and again to reconcile (GET pages of 1,000).",
    ]


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

        since = _high_water(state)
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
        + 1  # the company search (no company changed)
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
        "search pages ceil(k/200) + v4 association reads ceil(k/1000) + company reads + 1 company search page "
        "+ 1 archived-listing page.",
        "- naive: the seed scripts' shape — the contact pages, then one company look-up per contact "
        "(incremental: an association look-up and a company look-up per contact).",
        "- rate limits off in the sandbox: wall time is ours; the last column is the request count under "
        "HubSpot's default budget.",
    ]
    lines += ["", *paced_vs_waited((3_000,) if quick else (3_000, 20_000)), "",
              *incremental_grid(5_000 if quick else 20_000), "",
              *overlap_writes(1_000 if quick else 5_000, 200 if quick else 1_000)]
    return "\n".join(lines)
