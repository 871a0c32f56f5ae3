"""LeadScraper -> LeadGenius: requests spent per 1,000 leads read, against the floor of 10 (list pages of 100).

Both sandboxes over HTTP. The LeadScraper budget is a short "hour" (the sandbox's window knob) so the even
pacing is visible: a run should spend about (requests x window / limit) seconds reading, not burst then stall.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio
import httpx

from etl.config import Settings
from etl.jobs import JobSpec, run_spec
from etl.sandbox.leadgenius.app import create_app as leadgenius_app
from etl.sandbox.leadscraper.app import SANDBOX_KEY, Config
from etl.sandbox.leadscraper.app import create_app as leadscraper_app
from etl.sandbox.server import start_in_thread

MAPPING = Path(__file__).resolve().parent.parent / "etl" / "mappings" / "leadscraper.toml"


def _run(lg_url: str, ls_url: str, tmp: Path, name: str, *, mapping: Path | None = None) -> tuple[dict, float]:
    settings = Settings(base_url=lg_url, auth_file=tmp / f"{name}.json", email="demo@leadgenius.local",
                        password="demo-password", state_path=tmp / f"{name}.db", leadscraper_api_key=SANDBOX_KEY,
                        leadscraper_base_url=f"{ls_url}/v1")
    spec = JobSpec(name=name, source="leadscraper", client=f"Bench {name}", concurrency=16, mapping=mapping)
    started = time.perf_counter()
    report = anyio.run(lambda: run_spec(spec, settings))
    assert report.exit_code == 0, report.to_dict()
    return report.to_dict(), time.perf_counter() - started


def main(quick: bool = False) -> str:
    leads, limit, window = (2000, 100, 10.0) if quick else (5000, 300, 20.0)
    detail_leads = 300 if quick else 1000
    lg = start_in_thread(leadgenius_app())
    ls = start_in_thread(leadscraper_app(Config(limit=limit, window_s=window)))
    admin = httpx.Client(base_url=ls.base_url, timeout=60)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            detail_map = tmp / "details.toml"
            detail_map.write_text(MAPPING.read_text(encoding="utf-8")
                                  + '\n[[notes]]\ncolumn = "signals_detected"\nlabel = "Signals"\n', encoding="utf-8")
            for label, n, faults, mapping in (
                ("list pages only (default mapping)", leads, [], None),
                ("same, 2% 503s and three 429s injected", leads,
                 [{"kind": "503", "route": "list", "probability": 0.02}, {"kind": "429", "route": "list", "next": 3}],
                 None),
                ("a mapping that reads signals_detected (details)", detail_leads, [], detail_map),
            ):
                admin.post("/__admin/reset")
                admin.post("/__admin/seed", json={"n": n, "seed": 7})
                for fault in faults:
                    admin.post("/__admin/faults", json=fault)
                report, elapsed = _run(lg.base_url, ls.base_url, tmp, f"r{len(rows)}", mapping=mapping)
                stats = admin.get("/__admin/stats").json()
                req = report["source_info"]["leadscraper_requests"]
                floor = -(-n // 100) + (n if mapping else 0)
                rows.append((label, n, req["list"], req["detail"], req["retries"], req["throttled_429"],
                             stats["sent_429"], req["total"], floor, stats["max_in_one_window"], elapsed))
    finally:
        admin.close()
        lg.stop()
        ls.stop()
    out = [
        "# LeadScraper: requests per 1,000 leads",
        "",
        f"LeadScraper sandbox budget {limit} requests per {window:.0f} s window (the hour, shortened); LeadGenius "
        "sandbox unlimited. Floor: one list request per 100 leads (10 per 1,000), plus one detail request per "
        "lead when the mapping asks for a detail-only field.",
        "",
        "| run | leads | list | detail | retries | 429 seen | requests sent | per 1,000 leads | floor per 1,000 "
        "| ratio to floor | most in one window | wall time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, n, lst, det, retries, seen, _sent, total, floor, most, elapsed in rows:
        per = total / n * 1000
        floor_per = floor / n * 1000
        out.append(f"| {label} | {n:,} | {lst} | {det} | {retries} | {seen} | {total} | {per:.1f} | {floor_per:.1f} "
                   f"| {per / floor_per:.2f} | {most} / {limit} | {elapsed:.1f} s |")
    out += [
        "",
        "`retries` and `429 seen` are the client's; every 429 was an injected one (the sandbox counts the ones "
        "it sent), none came from running past the budget. Requests over the floor are exactly the retried "
        "ones. The detail run is paced evenly over the window: `most in one window` stays under the limit.",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(main(quick=True))
