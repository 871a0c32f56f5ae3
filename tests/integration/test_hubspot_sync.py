"""Issue 13 end to end: `sync JOB.toml` against both sandboxes over HTTP, the sandbox driven through
the official hubspot-api-client where HubSpot has an endpoint (rename, switch, merge, archive).

Index lag, company renames, primary switches, archives and merges: each leaves the LeadGenius client
exactly as HubSpot is, and writes nothing else.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.contacts import PublicMergeInput

from etl.config import Settings
from etl.jobs import JobSpec, run_job
from etl.report import RunReport
from tests.hubspot.conftest import HSSandbox, _hs_server, hs_sandbox  # noqa: F401 - fixtures
from tests.integration.helpers import email_counts, settings_for, stored

HUBSPOT_ID = re.compile(r"\*\*HubSpot ID:\*\* (\d+)")
CLIENT = "hubspot-sync"
# The scenario says 20 s of index lag; the logic does not depend on its size, so the test
# uses a few seconds to stay within CI's budget (LAG_S < the default 10-minute lookback either way).
LAG_S = 3


def job_file(tmp_path: Path, **keys: Any) -> Path:
    keys = {"mode": "upsert", **keys}
    lines = ['name = "hs"', 'source = "hubspot"', f'client = "{CLIENT}"']
    lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}".replace("'", '"') for k, v in keys.items()]
    path = tmp_path / f"job-{len(list(tmp_path.glob('job-*.toml')))}.toml"
    path.write_text("[job]\n" + "\n".join(lines) + "\n")
    return path


def sync(lg: Any, hs: HSSandbox, tmp_path: Path, *, full: bool = False, **keys: Any) -> RunReport:
    settings: Settings = replace(settings_for(lg.base_url, tmp_path), hubspot_token=hs.token,
                                 hubspot_base_url=hs.base_url)
    spec = JobSpec.load(job_file(tmp_path, **keys))
    if full:
        spec = replace(spec, full=True)
    report = run_job(spec, settings)
    assert report.exit_code == 0, report.to_dict()
    return report


def leads_by_contact(lg: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for lead in stored(lg, CLIENT):
        match = HUBSPOT_ID.search(lead.get("notes") or "")
        assert match, lead
        assert match.group(1) not in out, "a contact with two leads"
        out[match.group(1)] = lead
    return out


def writes(lg: Any) -> tuple[int, int, int]:
    """(POSTs, PUTs, DELETEs) the LeadGenius sandbox has answered so far."""
    req = lg.stats()["requests"]

    def n(route: str) -> int:
        return sum(v for k, v in req.get(route, {}).items() if k.startswith("2"))

    return n("POST /api/leads"), n("PUT /api/leads"), n("DELETE /api/leads")


def without_stamps(lead: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in lead.items() if k not in ("updatedAt",)}


def make_contacts(hs: HSSandbox, n: int, *, titled: bool = True, prefix: str = "p") -> list[str]:
    """`n` contacts with distinct e-mails, each with a primary company of its own name."""
    companies = hs.admin("POST", "companies", {"inputs": [
        {"properties": {"name": f"Company {prefix}{i}", "domain": f"{prefix}{i}.example"}} for i in range(n)
    ]})["ids"]
    inputs = [{
        "properties": {"firstname": f"First{i}", "lastname": f"Last{i}", "email": f"{prefix}{i}@people.example",
                       **({"jobtitle": "Engineer"} if titled else {})},
        "companies": [companies[i]], "primary": companies[i],
    } for i in range(n)]
    ids: list[str] = hs.admin("POST", "contacts", {"inputs": inputs})["ids"]
    return ids


def test_index_lag_thirty_changes_synced_at_once_then_after_the_lag(lg_sandbox, hs_sandbox, tmp_path) -> None:
    hs_sandbox.seed(300, seed=31, adversarial=False)
    first = sync(lg_sandbox, hs_sandbox, tmp_path)
    assert first.source_info["read"] == "full"
    before = writes(lg_sandbox)
    titles = {c["id"]: c["properties"]["jobtitle"] for c in hs_sandbox.state()["contacts"]}
    hs_sandbox.config(index_lag_ms=LAG_S * 1000)
    lagged = set(hs_sandbox.touch(n=30, seed=1, group=1))  # search sees these LAG_S late
    hs_sandbox.config(index_lag_ms=0)
    time.sleep(0.05)
    prompt = set(hs_sandbox.touch(ids=sorted(set(titles) - lagged)[:5]))  # newer, and seen at once
    truth = {c["id"]: c["properties"] for c in hs_sandbox.state()["contacts"]}
    # a title emptied at the source cannot be cleared in LeadGenius ("" and null are 500s): no write
    changed = {c for c in lagged | prompt if truth[c]["jobtitle"] and truth[c]["jobtitle"] != titles[c]}
    assert len(changed & lagged) >= 20

    at_once = sync(lg_sandbox, hs_sandbox, tmp_path)  # sees the 5 prompt changes, not the 30
    assert at_once.counts.updated == len(changed & prompt)
    time.sleep(LAG_S + 0.5)
    after_lag = sync(lg_sandbox, hs_sandbox, tmp_path)

    leads = leads_by_contact(lg_sandbox)
    for cid in changed:
        assert leads[cid]["title"] == truth[cid]["jobtitle"], cid
    assert len(leads) == 300 - first.counts.duplicates - first.counts.rejected
    assert set(email_counts(stored(lg_sandbox, CLIENT)).values()) == {1}  # none doubled
    posts, puts, _ = (a - b for a, b in zip(writes(lg_sandbox), before, strict=True))
    assert posts == 0 and puts == len(changed) == at_once.counts.updated + after_lag.counts.updated
    # the overlap re-read the prompt contacts: no second write for them (their content hash)
    assert after_lag.counts.extracted >= len(lagged | prompt) and after_lag.counts.updated == len(changed - prompt)
    # the mark never passes HubSpot's clock at run start minus the lookback
    mark, cap = (datetime.fromisoformat(after_lag.source_info[k]) for k in ("mark_after", "mark_cap"))
    assert mark <= cap


def test_without_lookback_a_lagged_change_is_lost_which_is_why_it_exists(lg_sandbox, hs_sandbox, tmp_path) -> None:
    lag_s = 8  # long enough that the second run surely runs while the 10 writes are hidden
    hs_sandbox.seed(100, seed=32, adversarial=False)
    sync(lg_sandbox, hs_sandbox, tmp_path, lookback="0s")
    titles = {c["id"]: c["properties"]["jobtitle"] for c in hs_sandbox.state()["contacts"]}
    hs_sandbox.config(index_lag_ms=lag_s * 1000)
    lagged = set(hs_sandbox.touch(n=10, seed=1, group=1))
    hs_sandbox.config(index_lag_ms=0)
    time.sleep(1.2)  # HubSpot's Date header counts whole seconds: the next run starts after the lagged writes
    hs_sandbox.touch(ids=sorted(set(titles) - lagged)[:3])
    truth = {c["id"]: c["properties"]["jobtitle"] for c in hs_sandbox.state()["contacts"]}
    changed = {c for c in lagged if truth[c] and truth[c] != titles[c]}
    sync(lg_sandbox, hs_sandbox, tmp_path, lookback="0s")  # sees the 3, moves the mark past the 10
    time.sleep(lag_s + 0.5)
    late = sync(lg_sandbox, hs_sandbox, tmp_path, lookback="0s")
    leads = leads_by_contact(lg_sandbox)
    assert changed and late.counts.updated == 0
    assert all(leads[c]["title"] != truth[c] for c in changed)  # lost: the drift the lookback closes


def test_renamed_companies_update_exactly_their_leads_company_name(lg_sandbox, hs_sandbox, tmp_path) -> None:
    hs_sandbox.seed(400, seed=33, adversarial=False)
    sync(lg_sandbox, hs_sandbox, tmp_path)
    state = hs_sandbox.state()
    live = [co for co in state["companies"] if not co["deleted"]]
    renamed = {co["id"]: f"{co['properties']['name']} (renamed)" for co in live[:3]}
    client = hs_sandbox.client()
    client.crm.companies.batch_api.update(
        {"inputs": [{"id": cid, "properties": {"name": name}} for cid, name in renamed.items()]}
    )
    affected = {c["id"] for c in state["contacts"] if c["primary"] in renamed}
    before_leads = leads_by_contact(lg_sandbox)
    before = writes(lg_sandbox)

    report = sync(lg_sandbox, hs_sandbox, tmp_path)

    after_leads = leads_by_contact(lg_sandbox)
    primary = {c["id"]: c["primary"] for c in state["contacts"]}
    assert affected and affected <= set(after_leads)
    for cid, lead in after_leads.items():
        if cid in affected:
            assert lead["companyName"] == renamed[primary[cid]]
            expected = {**without_stamps(before_leads[cid]), "companyName": renamed[primary[cid]]}
            assert without_stamps(lead) == expected  # nothing but the company name
        else:
            assert lead == before_leads[cid]  # not even touched
    posts, puts, deletes = (a - b for a, b in zip(writes(lg_sandbox), before, strict=True))
    assert (posts, puts, deletes) == (0, len(affected), 0)
    assert report.source_info["changed_companies"] == 3
    assert report.counts.updated == len(affected)


def test_primary_switches_are_found_by_a_full_run_which_puts_only_them(lg_sandbox, hs_sandbox, tmp_path) -> None:
    ids = make_contacts(hs_sandbox, 40)
    # with a 1 s lookback the next run's window (the mark, HubSpot's whole-second clock less 1 s, less
    # 1 s again) starts after the companies were created
    time.sleep(3.2)
    sync(lg_sandbox, hs_sandbox, tmp_path, lookback="1s")
    state = hs_sandbox.state()
    contacts = {c["id"]: c for c in state["contacts"]}
    assoc = hs_sandbox.client().crm.associations.v4.basic_api
    switched = ids[:10]
    for i, cid in enumerate(switched):
        target = contacts[ids[-1 - i]]["primary"]  # another contact's company: another name
        assoc.create("contacts", cid, "companies", target,
                     [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)])
    quiet = sync(lg_sandbox, hs_sandbox, tmp_path, lookback="1s")
    assert quiet.counts.updated == 0, quiet.source_info  # a switch leaves no trace a search can find
    before_leads = leads_by_contact(lg_sandbox)
    before = writes(lg_sandbox)

    full = sync(lg_sandbox, hs_sandbox, tmp_path, full=True, lookback="1s")

    posts, puts, deletes = (a - b for a, b in zip(writes(lg_sandbox), before, strict=True))
    assert (posts, puts, deletes) == (0, 10, 0)
    assert (full.counts.created, full.counts.updated, full.counts.unchanged) == (0, 10, 30)
    assert full.source_info["read"] == "full" and full.source_info["full_reason"] == "--full"
    after = leads_by_contact(lg_sandbox)
    now = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    names = {co["id"]: co["properties"]["name"] for co in state["companies"]}
    assert {cid for cid in after if after[cid] != before_leads[cid]} == set(switched)
    for cid in switched:
        assert after[cid]["companyName"] == names[now[cid]["primary"]]


def test_full_every_makes_a_scheduled_run_full_once_due(lg_sandbox, hs_sandbox, tmp_path) -> None:
    # Not due within the hour, then due after one second: a 2 s window for both raced the runs' own
    # length on a loaded machine (the second run was already "due").
    make_contacts(hs_sandbox, 5)
    first = sync(lg_sandbox, hs_sandbox, tmp_path, full_every="1h")
    second = sync(lg_sandbox, hs_sandbox, tmp_path, full_every="1h")
    time.sleep(1.1)
    third = sync(lg_sandbox, hs_sandbox, tmp_path, full_every="1s")
    assert [r.source_info["read"] == "full" for r in (first, second, third)] == [True, False, True]
    assert first.source_info["full_reason"] == "first run"
    assert third.source_info["full_reason"].startswith("full_every")


def _archive_and_merge(hs: HSSandbox, ids: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    client = hs.client()
    archived = ids[:5]
    for cid in archived:
        client.crm.contacts.basic_api.archive(cid)
    pairs = [(ids[10 + 2 * i], ids[11 + 2 * i]) for i in range(3)]  # (survivor, merged away)
    for survivor, gone in pairs:
        client.crm.contacts.basic_api.merge(PublicMergeInput(object_id_to_merge=gone, primary_object_id=survivor))
    return archived, pairs


def test_archive_and_merge_with_keep_deletes_nothing_and_reports_them(lg_sandbox, hs_sandbox, tmp_path) -> None:
    ids = make_contacts(hs_sandbox, 20, titled=False)
    # the merged-away contacts hold a job title their survivors lack: the merge gives it to the survivor
    hs_sandbox.client().crm.contacts.batch_api.update(
        {"inputs": [{"id": ids[11 + 2 * i], "properties": {"jobtitle": f"Merged title {i}"}} for i in range(3)]}
    )
    sync(lg_sandbox, hs_sandbox, tmp_path)
    archived, pairs = _archive_and_merge(hs_sandbox, ids)
    before = writes(lg_sandbox)

    report = sync(lg_sandbox, hs_sandbox, tmp_path)  # on_archive defaults to keep

    info = report.source_info
    assert (info["archived"], info["merged_away"]) == (5, 3)
    assert info["archived_ids"] == sorted(archived, key=int)
    assert info["merged_away_ids"] == sorted((g for _, g in pairs), key=int)
    assert info["on_archive"] == "keep" and info.get("deleted", 0) == 0
    assert len(stored(lg_sandbox, CLIENT)) == 20  # nothing deleted
    assert writes(lg_sandbox)[2] == before[2]
    leads = leads_by_contact(lg_sandbox)
    for i, (survivor, _) in enumerate(pairs):
        assert leads[survivor]["title"] == f"Merged title {i}"  # the survivor's lead is updated
    again = sync(lg_sandbox, hs_sandbox, tmp_path)  # since the last run: reported once
    assert (again.source_info["archived"], again.source_info["merged_away"]) == (0, 0)


def test_archive_and_merge_with_delete_removes_exactly_the_jobs_eight_leads(lg_sandbox, hs_sandbox, tmp_path) -> None:
    ids = make_contacts(hs_sandbox, 20, titled=False)
    hs_sandbox.client().crm.contacts.batch_api.update(
        {"inputs": [{"id": ids[11 + 2 * i], "properties": {"jobtitle": f"Merged title {i}"}} for i in range(3)]}
    )
    # a lead the job did not create: its e-mail was in the client before the job's first run
    outsider = make_contacts(hs_sandbox, 1, prefix="outsider")[0]
    headers = lg_sandbox.bearer()
    import httpx

    with httpx.Client(base_url=lg_sandbox.base_url, headers=headers) as http:
        http.post("/api/clients", json={"clientName": CLIENT}).raise_for_status()
        http.post("/api/leads", json={"client_id": CLIENT, "firstName": "Pre", "lastName": "Existing",
                                      "email": "outsider0@people.example"}).raise_for_status()
    first = sync(lg_sandbox, hs_sandbox, tmp_path, on_archive="delete")
    assert "note" not in first.source_info
    by_contact = leads_by_contact(lg_sandbox)
    outsider_lead = by_contact[outsider]
    assert outsider_lead["firstName"] == "First0"  # adopted and updated by the job, not created by it
    archived, pairs = _archive_and_merge(hs_sandbox, ids)
    hs_sandbox.client().crm.contacts.basic_api.archive(outsider)
    gone = set(archived) | {g for _, g in pairs}
    before = writes(lg_sandbox)
    dry = sync(lg_sandbox, hs_sandbox, tmp_path, on_archive="delete", dry_run=True)
    assert len(dry.source_info["would_delete"]) == 8 and writes(lg_sandbox) == before  # says, touches nothing

    report = sync(lg_sandbox, hs_sandbox, tmp_path, on_archive="delete")

    remaining = {lead["id"] for lead in stored(lg_sandbox, CLIENT)}
    assert {by_contact[c]["id"] for c in gone}.isdisjoint(remaining)  # the 8 are gone
    assert remaining == {by_contact[c]["id"] for c in by_contact if c not in gone}  # and only they
    assert outsider_lead["id"] in remaining  # never a lead the job did not create
    info = report.source_info
    assert (info["archived"], info["merged_away"]) == (6, 3)
    assert info["deleted"] == 8 and info["delete_failed"] == []
    assert info["kept_not_created_by_job"] == ["outsider0@people.example"]
    _, puts, deletes = (a - b for a, b in zip(writes(lg_sandbox), before, strict=True))
    assert puts == 3 and deletes >= 1  # the 3 survivors updated; the deletes went in batches
    leads = leads_by_contact(lg_sandbox)
    for i, (survivor, _) in enumerate(pairs):
        assert leads[survivor]["title"] == f"Merged title {i}"


@pytest.mark.slow
@pytest.mark.timeout(1800)
# The dry run reads all 25,000 changes through the search limit (what this test is about) in about
# a minute; the real one also writes them at the sandbox's pace (12 minutes): a soak run, not CI.
@pytest.mark.parametrize("dry_run", [True, pytest.param(False, marks=pytest.mark.soak)], ids=["dry-run", "real"])
def test_a_25k_change_sync_under_the_search_limit_trips_no_unrecovered_429(
    lg_sandbox, hs_sandbox, tmp_path, dry_run: bool
) -> None:
    """25,000 changes past the 10,000-result cap, a portal allowing 3 searches/s (the extractor starts
    at 5 and learns) and 100 requests / 10 s. The dry run reads and plans everything (the HubSpot side
    in full); the real one also writes the 25,000 leads."""
    hs_sandbox.seed(25_000, seed=34, adversarial=False)
    hs_sandbox.config(search_per_s=3)
    started = time.monotonic()
    report = sync(lg_sandbox, hs_sandbox, tmp_path, since="2000-01-01T00:00:00Z", concurrency=16, dry_run=dry_run)
    duration = time.monotonic() - started
    stats = hs_sandbox.stats()["requests"]
    searches = stats["contacts_search"]
    assert report.counts.extracted == 25_000 and report.counts.failed == 0 and report.exit_code == 0
    assert report.source_info["hubspot_requests"]["throttled_429"] == sum(r.get("429", 0) for r in stats.values())
    # learned at once, and tried again once per 30 s (the pacer creeps back up in case the limit rose)
    assert 1 <= searches.get("429", 0) <= 2 + duration / 30
    if not dry_run:
        assert len(stored(lg_sandbox, CLIENT)) == report.counts.confirmed == 25_000
    print(f"\n25k-change sync ({'dry run' if dry_run else 'real'}): {duration:.1f} s, {sum(searches.values())} "
          f"searches, {searches.get('429', 0)} search 429s, {report.source_info['hubspot_requests']}")


def test_delete_never_takes_the_lead_of_a_live_contact_sharing_the_email(lg_sandbox, hs_sandbox, tmp_path) -> None:
    ids = make_contacts(hs_sandbox, 6)
    twin = hs_sandbox.admin("POST", "contacts", {"inputs": [
        {"properties": {"firstname": "Twin", "lastname": "Same", "email": "P0@PEOPLE.EXAMPLE"}}
    ]})["ids"][0]  # the same e-mail as contact ids[0], other case: one lead for both
    time.sleep(3.2)  # with a 1 s lookback, the second run does not read the twin again (see above)
    sync(lg_sandbox, hs_sandbox, tmp_path, on_archive="delete", lookback="1s")
    assert len(stored(lg_sandbox, CLIENT)) == 6
    client = hs_sandbox.client()
    client.crm.contacts.basic_api.archive(ids[0])  # the twin stays live, and is not modified
    client.crm.contacts.basic_api.archive(ids[1])

    report = sync(lg_sandbox, hs_sandbox, tmp_path, on_archive="delete", lookback="1s")

    assert report.counts.extracted == 0  # the twin was not read: only HubSpot's search can tell it lives
    emails = {lead["email"] for lead in stored(lg_sandbox, CLIENT)}
    assert "p0@people.example" in emails and "p1@people.example" not in emails
    assert report.source_info["deleted"] == 1 and report.source_info["archived"] == 2
    assert twin not in report.source_info["archived_ids"]


def test_insert_mode_says_company_changes_need_upsert(lg_sandbox, hs_sandbox, tmp_path) -> None:
    make_contacts(hs_sandbox, 3)
    first = sync(lg_sandbox, hs_sandbox, tmp_path, mode="insert")  # a full run: switches unseen in insert mode
    assert "upsert" in first.source_info["note"]
    company = hs_sandbox.state()["companies"][0]["id"]
    hs_sandbox.admin("POST", "companies/rename", {"inputs": [{"id": company, "properties": {"name": "New"}}]})
    again = sync(lg_sandbox, hs_sandbox, tmp_path, mode="insert")
    assert again.counts.updated == 0 and "upsert" in again.source_info["note"]


def _cli_sync(env: dict[str, str], tmp_path: Path, name: str, **keys: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """`sync JOB.toml` through the CLI: (exit code, its report, its row of `runs --json`)."""
    from tests.integration.test_cli import cli

    report_path = tmp_path / f"{name}.json"
    proc = cli("sync", str(job_file(tmp_path, report=str(report_path), **keys)), "-q", env=env)
    assert "Traceback" not in proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    runs = {r["run_id"]: r for r in map(json.loads, cli("runs", "--json", env=env).stdout.splitlines())}
    return proc.returncode, report, runs[report["run_id"]]


def test_failed_deletes_exit_1_in_report_and_runs_row_and_undo_names_the_deleted_leads(lg_sandbox, hs_sandbox, tmp_path) -> None:
    from tests.integration.test_cli import env_for

    env = env_for(lg_sandbox.base_url, tmp_path, HUBSPOT_ACCESS_TOKEN=hs_sandbox.token,
                  HUBSPOT_BASE_URL=hs_sandbox.base_url)
    ids = make_contacts(hs_sandbox, 6)
    code, report, row = _cli_sync(env, tmp_path, "first", on_archive="delete")
    assert (code, report["exit_code"], row["exit_code"]) == (0, 0, 0)
    for contact in ids[:2]:
        hs_sandbox.client().crm.contacts.basic_api.archive(contact)
    lg_sandbox.fault("500", probability=1.0, route="DELETE /api/leads")  # every delete refused

    code, report, row = _cli_sync(env, tmp_path, "refused", on_archive="delete")

    assert len(report["source_info"]["delete_failed"]) == 2 and len(stored(lg_sandbox, CLIENT)) == 6
    assert (code, report["exit_code"], row["exit_code"]) == (1, 1, 1)  # one verdict, wherever it is read
    assert row["ended_at"] is not None

    # The next run deletes them (the marks stayed). Its undo cannot bring them back, and says which.
    lg_sandbox.admin("DELETE", "faults")
    code, report, row = _cli_sync(env, tmp_path, "deleted", on_archive="delete")
    assert (code, report["exit_code"], row["exit_code"], report["source_info"]["deleted"]) == (0, 0, 0, 2)
    assert len(stored(lg_sandbox, CLIENT)) == 4
    from tests.integration.test_undo import undo

    proc, undone = undo(env, tmp_path, report["run_id"])
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert undone["counts"]["cannot_restore"] == 2 and undone["counts"]["deleted"] == 0
    assert sorted(d["email"] for d in undone["cannot_restore"]) == report["source_info"]["deleted_keys"]
    assert all("cannot bring a deleted lead back" in d["reason"] for d in undone["cannot_restore"])
    assert "2 lead(s) the run deleted" in proc.stdout and "cannot be brought back" in proc.stdout
    assert len(stored(lg_sandbox, CLIENT)) == 4  # nothing else touched
