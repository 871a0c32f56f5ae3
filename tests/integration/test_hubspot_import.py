"""HubSpot -> LeadGenius through both sandboxes, with the real hubspot-api-client."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import phonenumbers
import pytest

from etl.jobs import JobSpec, default_job_name, run_spec
from etl.report import RunReport
from tests.hubspot.conftest import _hs_server, hs_sandbox  # noqa: F401 - fixtures
from tests.integration.helpers import assert_no_quirk_500, email_counts, settings_for, stored
from tests.integration.test_cli import env_for


def e164_or_as_is(phone: str | None) -> str | None:
    """A number written with + is stored as E.164 when phonenumbers calls it valid (issue 11);
    without a country or default region, any other number is stored as written."""
    if phone is None or not phone.startswith("+"):
        return phone
    number = phonenumbers.parse(phone, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if phonenumbers.is_valid_number(number) else phone

HUBSPOT_ID = re.compile(r"\*\*HubSpot ID:\*\* (\d+)")


def touch_changed(hs: Any, **kw: Any) -> set[str]:
    """Touch contacts; return those whose job title changed to a new value.

    An unchanged contact sends nothing; a title emptied at the source cannot be cleared in LeadGenius
    ("" and null both answer 500, quirk 3), so it sends nothing either."""
    before = {c["id"]: c["properties"] for c in hs.state()["contacts"]}
    touched = hs.touch(**kw)
    after = {c["id"]: c["properties"] for c in hs.state()["contacts"]}
    return {
        cid for cid in touched
        if (after[cid]["jobtitle"] or "").strip() and before[cid]["jobtitle"] != after[cid]["jobtitle"]
    }


def run_hs(lg: Any, hs: Any, tmp_path: Path, *, client: str = "HubSpot Leads", full: bool = False,
           mode: str = "upsert", **opts: Any) -> RunReport:
    settings = replace(settings_for(lg.base_url, tmp_path), hubspot_token=hs.token, hubspot_base_url=hs.base_url)
    spec = JobSpec(name=default_job_name("hubspot", client), source="hubspot", client=client, mode=mode, full=full,
                   **opts)
    return anyio.run(lambda: run_spec(spec, settings))


def test_full_import_of_adversarial_contacts_is_exact_per_contact(lg_sandbox, hs_sandbox, tmp_path: Path) -> None:
    summary = hs_sandbox.seed(3000, seed=5, adversarial=True)
    assert summary["without_email"] and summary["dot_lastname"] and summary["primary_company_deleted"]
    report = run_hs(lg_sandbox, hs_sandbox, tmp_path, rejects=tmp_path / "rej.csv")
    truth = hs_sandbox.state()
    contacts = {c["id"]: c for c in truth["contacts"] if not c["archived"]}
    companies = {c["id"]: c for c in truth["companies"]}
    leads = stored(lg_sandbox, "hubspot-leads")

    # every contact is accounted for exactly once: a lead, a reject, or a duplicate e-mail
    lead_ids = [HUBSPOT_ID.search(lead["notes"]).group(1) for lead in leads]
    rejects = [line.split(",")[0] for line in (tmp_path / "rej.csv").read_text().splitlines()[1:]]
    assert len(lead_ids) == len(set(lead_ids))
    assert not set(lead_ids) & set(rejects)
    assert len(lead_ids) + len(rejects) + report.counts.duplicates == len(contacts) == report.counts.extracted
    assert set(email_counts(leads).values()) == {1}

    for lead, cid in zip(leads, lead_ids, strict=True):
        props = contacts[cid]["properties"]
        assert lead["email"] == props["email"].strip().lower()
        primary = companies.get(contacts[cid]["primary"] or "")
        if primary and not primary["deleted"]:
            # seed bug #5: the company comes from the primary association, never the contact property
            assert lead.get("companyName") == ((primary["properties"].get("name") or "").strip() or None)
            domain = (primary["properties"].get("domain") or "").strip() or None
            # a URL without a scheme gains https:// (issue 11)
            assert lead.get("companyUrl") == (domain if not domain or "://" in domain else f"https://{domain}")
        else:
            assert "companyName" not in lead
        phone = (props.get("phone") or "").strip() or (props.get("mobilephone") or "").strip() or None
        assert lead.get("phoneNumber") == e164_or_as_is(phone)
        assert re.search(r"[^\W_]", lead["lastName"]) or set(lead["lastName"]) == {"-"}
        if props.get("lifecyclestage"):
            assert f"**Lifecycle Stage:** {props['lifecyclestage']}" in lead["notes"]
    assert report.exit_code == 0 and report.counts.confirmed == len(leads)
    assert report.source_info["company_deleted"] > 0
    # request floor: 100 contacts per page, each primary company batch-read once, 100 at a time
    hs_req = report.source_info["hubspot_requests"]
    primaries = {c["primary"] for c in truth["contacts"] if c["primary"] and not c["archived"]}
    assert hs_req["contacts_page"] == math.ceil(len(contacts) / 100)
    assert hs_req["companies_batch"] <= math.ceil(len(primaries) / 100) + 1
    assert hs_req["search"] == 0
    assert_no_quirk_500(lg_sandbox)


def test_incremental_run_sends_exactly_the_touched_contacts_as_puts(lg_sandbox, hs_sandbox, tmp_path: Path) -> None:
    hs_sandbox.seed(1200, seed=9, adversarial=False)
    first = run_hs(lg_sandbox, hs_sandbox, tmp_path)
    assert first.counts.created == first.counts.valid - first.counts.duplicates > 1000
    assert first.source_info["mark_after"]
    before = lg_sandbox.stats()["requests"]
    touched = touch_changed(hs_sandbox, n=50, seed=2)
    assert len(touched) > 35
    second = run_hs(lg_sandbox, hs_sandbox, tmp_path)
    after = lg_sandbox.stats()["requests"]
    assert second.counts.extracted >= 50
    assert (second.counts.created, second.counts.updated, second.counts.failed) == (0, len(touched), 0)
    assert after["PUT /api/leads"]["200"] - before.get("PUT /api/leads", {}).get("200", 0) == len(touched)
    assert after["POST /api/leads"] == before["POST /api/leads"]
    assert second.source_info["hubspot_requests"]["contacts_page"] == 0
    assert second.source_info["read"].startswith("changed since")
    by_id = {HUBSPOT_ID.search(lead["notes"]).group(1): lead for lead in stored(lg_sandbox, "hubspot-leads")}
    truth = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    for cid in touched:
        assert by_id[cid]["title"] == truth[cid]["properties"]["jobtitle"]
    third = run_hs(lg_sandbox, hs_sandbox, tmp_path)  # nothing changed since: nothing sent
    assert (third.counts.created, third.counts.updated) == (0, 0)


def test_storms_of_429_from_both_apis_leave_an_exact_state(lg_sandbox, hs_sandbox, tmp_path: Path) -> None:
    hs_sandbox.seed(600, seed=4, adversarial=False)
    hs_sandbox.fault("429", next=6)
    lg_sandbox.fault("429", next=30, route="POST /api/leads")  # a storm: 30 in a row
    lg_sandbox.fault("503", probability=0.05, seed=2)
    report = run_hs(lg_sandbox, hs_sandbox, tmp_path)
    assert report.exit_code == 0
    assert report.source_info["hubspot_requests"]["throttled_429"] >= 6  # waited out, never fatal
    assert lg_sandbox.stats()["injected"].get("429", 0) == 30
    counts = email_counts(stored(lg_sandbox, "hubspot-leads"))
    assert len(counts) == report.counts.confirmed and set(counts.values()) == {1}
    changed = touch_changed(hs_sandbox, n=40, seed=8)
    hs_sandbox.fault("429", next=3)
    lg_sandbox.fault("429", next=10, route="PUT /api/leads")
    again = run_hs(lg_sandbox, hs_sandbox, tmp_path)
    assert (again.counts.updated, again.counts.failed, again.exit_code) == (len(changed), 0, 0)


@pytest.mark.slow
def test_sync_over_ten_thousand_changes_is_exact(lg_sandbox, hs_sandbox, tmp_path: Path) -> None:
    hs_sandbox.seed(10_500, seed=1, adversarial=False)
    first = run_hs(lg_sandbox, hs_sandbox, tmp_path, concurrency=16)
    n = first.counts.created
    changed = touch_changed(hs_sandbox, n=10_500, seed=3)
    second = run_hs(lg_sandbox, hs_sandbox, tmp_path, concurrency=16)
    assert n == 10_500 and len(changed) > 8000
    assert second.counts.extracted >= 10_500  # past the 10,000-result search cap
    assert (second.counts.created, second.counts.updated, second.counts.failed) == (0, len(changed), 0)
    assert second.counts.duplicates == first.counts.duplicates  # nobody read twice
    assert set(email_counts(stored(lg_sandbox, "hubspot-leads")).values()) == {1}


def test_overlapping_sync_is_refused_by_the_lock(lg_sandbox, hs_sandbox, tmp_path: Path, state_db: str) -> None:
    """Two processes in different working directories ("machines" when the state is shared): the second
    exits 4 at once and touches nothing; once the first dies (kill -9), its lock is free again."""
    job = tmp_path / "job.toml"
    job.write_text('[job]\nname = "nightly"\nsource = "hubspot"\nclient = "HubSpot Leads"\nmode = "upsert"\n')
    assert JobSpec.load(job).name == "nightly"
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    machine_a.mkdir()
    machine_b.mkdir()
    env = env_for(lg_sandbox.base_url, machine_b, HUBSPOT_ACCESS_TOKEN=hs_sandbox.token,
                  HUBSPOT_BASE_URL=hs_sandbox.base_url, LEADGENIUS_ETL_STATE=state_db)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from etl.config import Settings; from etl.state import open_state\n"
         "with open_state(Settings.from_env()) as s, s.job_lock('nightly'):\n"
         "    print('locked', flush=True); time.sleep(120)\n"],
        env=env, cwd=machine_a, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = subprocess.run([sys.executable, "-m", "etl", "sync", str(job)], env=env, cwd=machine_b,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 4 and "already running" in proc.stderr and "Traceback" not in proc.stderr
        assert f"pid {holder.pid}" in proc.stderr
        assert lg_sandbox.stats()["total"] == 0 and hs_sandbox.stats()["total"] == 0  # touched nothing
    finally:
        holder.kill()
        holder.wait(10)
    ok = subprocess.run([sys.executable, "-m", "etl", "sync", str(job), "-q"], env=env, cwd=machine_b,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.slow
def test_kill_minus_9_during_a_hubspot_import_then_rerun(lg_sandbox, hs_sandbox, tmp_path: Path) -> None:
    hs_sandbox.seed(800, seed=12, adversarial=True)
    lg_sandbox.config(latency_ms=10)
    env = env_for(lg_sandbox.base_url, tmp_path, HUBSPOT_ACCESS_TOKEN=hs_sandbox.token,
                  HUBSPOT_BASE_URL=hs_sandbox.base_url)
    args = [sys.executable, "-m", "etl", "import", "hubspot", "--client", "HubSpot Leads", "--mode", "upsert", "-q",
            "--concurrency", "4"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stored(lg_sandbox, "hubspot-leads")) < 300:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    final = subprocess.run([*args, "--report", str(tmp_path / "r.json")], env=env, capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    leads = stored(lg_sandbox, "hubspot-leads")
    assert set(email_counts(leads).values()) == {1}
    assert len(leads) == report["counts"]["confirmed"] == report["counts"]["valid"] - report["counts"]["duplicates"]
