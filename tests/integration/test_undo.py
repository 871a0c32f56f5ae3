"""`leadgenius-etl undo` end to end: the real CLI over HTTP against the sandbox."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_helpers import assert_no_secret
from tests.hubspot.conftest import _hs_server, hs_sandbox  # noqa: F401 - fixtures
from tests.integration.helpers import people, stored, write_csv
from tests.integration.test_cli import assert_clean_failure, cli, env_for

CLIENT = "acme-corp"


def everything(lg: Any) -> dict[str, dict[str, Any]]:
    """Every lead of every tenant and client, by id."""
    return {lead["id"]: lead for lead in lg.state()["leads"]}


def without_stamps(leads: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i: {k: v for k, v in lead.items() if k != "updatedAt"} for i, lead in leads.items()}


def run_import(env: dict[str, str], tmp_path: Path, rows: list[dict[str, str]], name: str, *extra: str) -> str:
    src = write_csv(tmp_path / f"{name}.csv", rows)
    report = tmp_path / f"{name}.json"
    proc = cli("import", "csv", str(src), "--client", "Acme Corp", "-q", "--report", str(report), *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    run_id: str = json.loads(report.read_text())["run_id"]
    return run_id


def undo(env: dict[str, str], tmp_path: Path, *args: str, name: str = "undo") -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / f"{name}.json"
    report.unlink(missing_ok=True)
    proc = cli("undo", *args, "--report", str(report), env=env)
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc, json.loads(report.read_text()) if report.exists() else {}


def bearer_call(lg: Any, method: str, **kw: Any) -> dict[str, Any]:
    """A person's own write through the API (not through the tool)."""
    r = httpx.request(method, f"{lg.base_url}/api/leads", headers=lg.bearer(), timeout=30, **kw)
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def seed_bystanders(lg: Any) -> None:
    """Leads the undo must never touch: another client, another tenant, and a person's lead in ours."""
    lg.seed(client="Other Client", n=15)
    lg.seed(client="Acme Corp", n=5, tenant=lg.other_tenant.email)
    lg.seed(client="Acme Corp", n=3, start=900)  # made by people in our client, before any run


def edited(rows: list[dict[str, str]], every: int = 2) -> list[dict[str, str]]:
    """Change the title and company of rows that had a title (an upsert changes values it can put back)."""
    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        if i % every == 0 and row["title"]:
            row["title"] = f"Head of {i}"
            row["companyName"] = f"Renamed {i}"
        out.append(row)
    return out


def test_import_upsert_undo_gives_back_the_exact_previous_state(lg_sandbox, tmp_path: Path, state_db: str) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_ETL_STATE=state_db)  # both state backends
    seed_bystanders(lg_sandbox)
    before_any = everything(lg_sandbox)
    rows = people(30)
    first = run_import(env, tmp_path, rows, "first")
    after_first = everything(lg_sandbox)
    # a person's lead that the upsert also updates: an update of a lead we did not create
    person = bearer_call(lg_sandbox, "POST", json={"client_id": CLIENT, "email": "pat@example.com",
                                                   "firstName": "Pat", "lastName": "Pat", "title": "Buyer",
                                                   "source": "manual"})["lead"]
    after_first[person["id"]] = person
    upsert_rows = [*edited(rows), *people(10, start=30),
                   {"firstName": "Pat", "lastName": "Pat", "email": "pat@example.com", "title": "Chief Buyer"}]
    second = run_import(env, tmp_path, upsert_rows, "second", "--mode", "upsert")
    changed = everything(lg_sandbox)
    assert len(changed) == len(after_first) + 10
    assert changed[person["id"]]["title"] == "Chief Buyer"

    dry, dry_report = undo(env, tmp_path, second, "--dry-run", name="dry")
    assert dry.returncode == 0 and dry_report["dry_run"] is True
    assert dry_report["counts"]["deleted"] == 10 and dry_report["counts"]["restored"] == 11, dry_report
    assert everything(lg_sandbox) == changed  # a dry run writes nothing

    proc, report = undo(env, tmp_path, second)
    assert proc.returncode == 0, proc.stderr
    assert report["run_id"] == second and report["dry_run"] is False
    assert report["counts"] == {"deleted": 10, "restored": 11, "conflicts": 0, "failed": 0, "already_gone": 0,
                                     "already_reverted": 0, "unclearable": 0, "not_written": 0,
                                     "cannot_restore": 0}
    now = everything(lg_sandbox)
    assert without_stamps(now) == without_stamps(after_first)  # field by field, every tenant and client
    untouched = {i for i in after_first if changed[i]["updatedAt"] == after_first[i]["updatedAt"]}
    assert len(untouched) == len(after_first) - 11
    assert all(now[i]["updatedAt"] == after_first[i]["updatedAt"] for i in untouched)

    proc, report = undo(env, tmp_path, first, name="undo-first")
    assert proc.returncode == 0, proc.stderr
    assert report["counts"]["deleted"] == 30
    final = everything(lg_sandbox)
    assert without_stamps(final) == without_stamps(before_any) | {person["id"]: without_stamps({"p": person})["p"]}

    runs = [json.loads(line) for line in cli("runs", "--json", env=env).stdout.splitlines()]
    by_id = {r["run_id"]: r for r in runs}
    assert by_id[first]["undone_by"] and by_id[second]["undone_by"] and by_id[second]["undo_exit"] == 0
    assert by_id[by_id[second]["undone_by"]]["command"] == "undo"
    assert by_id[by_id[second]["undone_by"]]["counts"]["deleted"] == 10
    table = cli("runs", env=env | {"COLUMNS": "250"}).stdout
    assert second in table and "yes (" in table


def test_undo_twice_is_a_no_op_and_bad_ids_exit_2(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    run = run_import(env, tmp_path, people(5), "one")
    proc, _ = undo(env, tmp_path, run)
    assert proc.returncode == 0, proc.stderr
    requests_before = lg_sandbox.stats()["total"]
    again, report = undo(env, tmp_path, run, name="again")
    assert again.returncode == 0 and "already undone" in again.stdout
    assert report["already_undone_by"] and report["counts"]["deleted"] == 0
    assert lg_sandbox.stats()["total"] == requests_before  # a no-op: not one request
    assert_clean_failure(cli("undo", "20990101T000000Z-nope", env=env), 2, "no run")
    undo_id = report["already_undone_by"]
    assert_clean_failure(cli("undo", undo_id, env=env), 2, "can't itself be undone")
    dry = cli("import", "csv", str(tmp_path / "one.csv"), "--client", "Acme Corp", "--dry-run", "-q", env=env)
    assert dry.returncode == 0
    dry_id = next(json.loads(line)["run_id"] for line in cli("runs", "--json", env=env).stdout.splitlines()
                  if json.loads(line)["dry_run"] and json.loads(line)["command"] == "import")
    assert_clean_failure(cli("undo", dry_id, env=env), 2, "dry run")
    assert_clean_failure(cli("undo", env=env), 2, "--last")
    assert_clean_failure(cli("undo", run, "--last", env=env), 2, "--last")


def test_refused_credentials_and_an_unreachable_target_exit_3(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    run = run_import(env, tmp_path, people(3), "one")
    (tmp_path / "auth.json").unlink()
    wrong = env | {"LEADGENIUS_PASSWORD": "not-the-password"}
    proc = cli("undo", run, env=wrong)
    assert_clean_failure(proc, 3, "refused")
    assert "not-the-password" not in proc.stdout + proc.stderr
    from etl.sandbox.server import free_port

    proc = cli("undo", run, env=env | {"LEADGENIUS_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert_clean_failure(proc, 3, "unreachable")
    assert len(stored(lg_sandbox, CLIENT)) == 3


def test_conflicts_are_left_alone_and_listed_then_force_reverts_them(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    rows = people(12)
    run_import(env, tmp_path, rows, "first")
    second = run_import(env, tmp_path, [*edited(rows), *people(4, start=50)], "second", "--mode", "upsert")
    leads = {lead["email"]: lead for lead in stored(lg_sandbox, CLIENT)}
    created = leads["person50@example.com"]
    updated = leads["person2@example.com"]
    assert updated["title"] == "Head of 2"
    # people edit two of the run's leads after it: one it created, one it updated (another field)
    bearer_call(lg_sandbox, "PUT", json={"id": created["id"], "notes": "called on Monday"})
    bearer_call(lg_sandbox, "PUT", json={"id": updated["id"], "notes": "a person's note"})

    proc, report = undo(env, tmp_path, second)
    assert proc.returncode == 1, proc.stderr
    assert report["counts"]["conflicts"] == 2 and report["counts"]["deleted"] == 3
    assert report["counts"]["restored"] == 3
    conflicts = {c["lead_id"]: c for c in report["conflicts"]}
    assert conflicts[created["id"]]["now"]["notes"] == "called on Monday"
    assert conflicts[created["id"]]["wrote"]["notes"] is None
    assert conflicts[updated["id"]]["wrote"]["title"] == updated["title"]
    assert conflicts[updated["id"]]["now"]["title"] == updated["title"]
    assert "conflict" in proc.stdout and "--force" in proc.stdout
    now = {lead["id"]: lead for lead in stored(lg_sandbox, CLIENT)}
    assert now[created["id"]]["notes"] == "called on Monday"  # left alone
    assert now[updated["id"]]["title"] == updated["title"]
    assert not any(lead["email"] in ("person51@example.com", "person52@example.com") for lead in now.values())
    runs = {json.loads(line)["run_id"]: json.loads(line) for line in cli("runs", "--json", env=env).stdout.splitlines()}
    assert runs[second]["undo_exit"] == 1

    proc, report = undo(env, tmp_path, second, "--force", name="forced")
    assert proc.returncode == 0, proc.stderr
    assert report["counts"]["deleted"] == 1 and report["counts"]["restored"] == 1
    assert all(c["forced"] for c in report["conflicts"])
    now = {lead["id"]: lead for lead in stored(lg_sandbox, CLIENT)}
    assert created["id"] not in now
    original = next(r for r in rows if r["email"].strip().lower() == updated["email"])
    assert now[updated["id"]]["title"] == original["title"]  # the run's fields back
    assert now[updated["id"]]["companyName"] == original["companyName"]
    assert now[updated["id"]]["notes"] == "a person's note"  # the person's field kept


def test_a_field_empty_before_the_run_is_reported_not_faked(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    rows = [{"firstName": "A", "lastName": "B", "email": "ab@example.com", "title": "", "companyName": "Old"}]
    run_import(env, tmp_path, rows, "first")
    second = run_import(env, tmp_path, [rows[0] | {"title": "CEO", "companyName": "New"}], "second",
                        "--mode", "upsert")
    proc, report = undo(env, tmp_path, second)
    assert proc.returncode == 1
    assert report["counts"]["unclearable"] == 1 and report["unclearable"][0]["fields"] == {"title": "CEO"}
    assert "cannot empty a field" in proc.stdout
    [lead] = stored(lg_sandbox, CLIENT)
    assert lead["companyName"] == "Old" and lead["title"] == "CEO"


def test_the_lying_batch_delete_is_repaired(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_API_KEY=lg_sandbox.tenant.api_key,
                  LEADGENIUS_USER_ID=lg_sandbox.tenant.user_id, LEADGENIUS_ETL_LOG_LEVEL="DEBUG")
    lg_sandbox.seed(client="Acme Corp", n=7, start=500)
    keep = {lead["id"] for lead in stored(lg_sandbox, CLIENT)}
    run = run_import(env, tmp_path, people(160), "big")
    lg_sandbox.fault("batch_keep", next=3, keep_ratio=0.4, seed=3)
    proc, report = undo(env, tmp_path, run)
    assert proc.returncode == 0, proc.stderr
    assert {lead["id"] for lead in stored(lg_sandbox, CLIENT)} == keep
    stats = lg_sandbox.stats()
    assert stats["injected"]["batch_keep"] == 3 and stats["batch_delete_kept"] > 0
    assert report["counts"]["deleted"] == 160 and report["verify"]["deleted_again"] == stats["batch_delete_kept"]
    assert stats["requests"]["DELETE /api/leads"]["200"] <= 4 + 3  # 160 ids = 4 batches, then the leftovers
    assert_no_secret(tmp_path, stdout=proc.stdout, stderr=proc.stderr,
                     report=(tmp_path / "undo.json").read_text())


def _kill_when(proc: subprocess.Popen[bytes], done: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not done():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "finished before it could be killed"


@pytest.mark.slow
def test_kill_minus_9_mid_import_then_undo_leaves_no_lead_of_that_run(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    seed_bystanders(lg_sandbox)
    before = everything(lg_sandbox)
    lg_sandbox.config(latency_ms=15)
    src = write_csv(tmp_path / "in.csv", people(300))
    proc = subprocess.Popen([sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme Corp",
                             "--concurrency", "4", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: len(stored(lg_sandbox, CLIENT)) >= 3 + 60)
    landed = len(stored(lg_sandbox, CLIENT)) - 3
    assert 0 < landed < 300
    lg_sandbox.config(latency_ms=0)
    undone, report = undo(env, tmp_path, "--last")
    assert undone.returncode == 0, undone.stderr
    assert without_stamps(everything(lg_sandbox)) == without_stamps(before)
    assert report["counts"]["deleted"] >= landed and report["counts"]["not_written"] > 0


@pytest.mark.slow
def test_kill_minus_9_mid_undo_then_undo_again_finishes_exact(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    seed_bystanders(lg_sandbox)
    rows = people(300)
    run_import(env, tmp_path, rows, "first")
    after_first = everything(lg_sandbox)
    second = run_import(env, tmp_path, [*edited(rows, every=1), *people(250, start=1000)], "second",
                        "--mode", "upsert")
    restorable = sum(1 for r in rows if r["title"])
    assert restorable == 200
    # one request at a time, each slow: 5 batch deletes, then 4 batch PUTs of 50 restores
    lg_sandbox.config(latency_ms=250)
    proc = subprocess.Popen([sys.executable, "-m", "etl", "undo", second, "--concurrency", "1", "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def heads() -> int:
        return sum(1 for lead in stored(lg_sandbox, CLIENT) if str(lead.get("title", "")).startswith("Head"))

    _kill_when(proc, lambda: heads() <= restorable - 50)
    assert heads() > 0  # killed midway: some restores were still to come
    lg_sandbox.config(latency_ms=0)
    again, report = undo(env, tmp_path, second)
    assert again.returncode == 0, again.stderr
    assert without_stamps(everything(lg_sandbox)) == without_stamps(after_first)
    c = report["counts"]
    assert c["already_gone"] == 250 and c["deleted"] == 0  # the killed undo had deleted them all
    assert c["restored"] + c["already_reverted"] == restorable and c["already_reverted"] >= 50


@pytest.mark.parametrize("api_key", [False, True], ids=["bearer-reads", "bulk-reads"])
def test_requests_per_deleted_lead_stay_near_the_batch_floor(lg_sandbox, tmp_path: Path, api_key: bool) -> None:
    extra = {"LEADGENIUS_API_KEY": lg_sandbox.tenant.api_key, "LEADGENIUS_USER_ID": lg_sandbox.tenant.user_id} \
        if api_key else {}
    env = env_for(lg_sandbox.base_url, tmp_path, **extra)
    run = run_import(env, tmp_path, people(500), "big")
    before = lg_sandbox.stats()["total"]
    proc, report = undo(env, tmp_path, run)
    assert proc.returncode == 0, proc.stderr
    sent = lg_sandbox.stats()["total"] - before
    # 10 batch deletes of 50, one read to plan and one to verify, the company, a login at most
    assert report["counts"]["deleted"] == 500 and sent <= 10 + 2 + 2 + 1
    assert sent / 500 <= 0.05 and report["requests"]["total"] <= sent


def test_a_sync_run_undone_then_synced_again_brings_the_leads_back(lg_sandbox, hs_sandbox, tmp_path: Path) -> None:
    from tests.integration.test_hubspot_import import touch_changed

    hs_sandbox.seed(60, seed=3, adversarial=False)
    job = tmp_path / "job.toml"
    # no lookback: the next read starts exactly at the mark, so only a mark moved back re-reads the run
    job.write_text('[job]\nname = "nightly"\nsource = "hubspot"\nclient = "HubSpot Leads"\nmode = "upsert"\n'
                   'lookback = "0s"\n')
    env = env_for(lg_sandbox.base_url, tmp_path, HUBSPOT_ACCESS_TOKEN=hs_sandbox.token,
                  HUBSPOT_BASE_URL=hs_sandbox.base_url)

    def sync() -> str:
        proc = cli("sync", str(job), "-q", env=env)
        assert proc.returncode == 0, proc.stderr
        newest = json.loads(cli("runs", "--json", "--limit", "1", env=env).stdout.splitlines()[0])
        assert newest["job"] == "nightly"
        run_id: str = newest["run_id"]
        return run_id

    def by_email() -> dict[str, dict[str, Any]]:
        skip = ("id", "createdAt", "updatedAt")
        return {lead["email"]: {k: v for k, v in lead.items() if k not in skip}
                for lead in stored(lg_sandbox, "hubspot-leads")}

    sync()
    after_first = everything(lg_sandbox)
    old_ids = [c["id"] for c in hs_sandbox.state()["contacts"] if not c["archived"]][:12]
    new = [{"properties": {"email": f"new{i}@example.com", "firstname": "New", "lastname": f"Contact{i}",
                           "jobtitle": "Buyer"}} for i in range(8)]
    hs_sandbox.admin("POST", "contacts", {"inputs": new})
    touched = touch_changed(hs_sandbox, ids=old_ids, seed=4)
    assert touched
    second = sync()
    synced = by_email()
    assert len(synced) == len(after_first) + 8

    proc, report = undo(env, tmp_path, second)
    assert proc.returncode == 0, proc.stderr
    assert report["counts"]["deleted"] == 8 and report["counts"]["restored"] == len(touched), report
    [mark] = [m for m in report["marks"] if m["name"] == "hubspot.lastmodifieddate"]
    assert mark["job"] == "nightly" and mark["to"] < mark["from"]
    assert without_stamps(everything(lg_sandbox)) == without_stamps(after_first)

    third = sync()  # the mark is back where the undone run started: the same changes are read again
    assert third != second and by_email() == synced
    runs = {json.loads(line)["run_id"]: json.loads(line) for line in cli("runs", "--json", env=env).stdout.splitlines()}
    assert runs[third]["counts"]["created"] == 8 and runs[third]["counts"]["updated"] == len(touched)
    assert runs[second]["undone_by"] and runs[second]["undo_exit"] == 0


def test_restores_go_in_batch_puts_and_a_refused_batch_goes_lead_by_lead(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    rows = people(150)
    run_import(env, tmp_path, rows, "first")
    after_first = everything(lg_sandbox)
    second = run_import(env, tmp_path, edited(rows, every=1), "second", "--mode", "upsert")
    restorable = sum(1 for r in rows if r["title"])
    assert restorable == 100
    lg_sandbox.fault("500", next=3, route="PUT /api/leads")  # the first batch PUT fails for good
    proc, report = undo(env, tmp_path, second, "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    assert report["counts"]["restored"] == restorable
    assert without_stamps(everything(lg_sandbox)) == without_stamps(after_first)
    puts = lg_sandbox.stats()["requests"]["PUT /api/leads"]
    # the upsert's 100 single PUTs, then 2 batch PUTs (one refused 3 times) and 50 single ones
    assert puts == {"200": 100 + 1 + 50, "500": 3}, puts


def test_undo_with_the_state_in_postgresql(lg_sandbox, pg_url: str, tmp_path: Path) -> None:
    from tests.pg_server import PASSWORD

    env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_ETL_STATE=pg_url)
    rows = people(20)
    run_import(env, tmp_path, rows, "first")
    after_first = everything(lg_sandbox)
    second = run_import(env, tmp_path, [*edited(rows), *people(5, start=40)], "second", "--mode", "upsert")
    proc, report = undo(env, tmp_path, second)
    assert proc.returncode == 0, proc.stderr
    assert (report["counts"]["deleted"], report["counts"]["restored"]) == (5, 6)
    assert without_stamps(everything(lg_sandbox)) == without_stamps(after_first)
    again, _ = undo(env, tmp_path, second, name="again")
    assert again.returncode == 0 and "already undone" in again.stdout
    runs = cli("runs", env=env | {"COLUMNS": "250"})
    assert "yes (" in runs.stdout
    for text in (proc.stdout, proc.stderr, (tmp_path / "undo.json").read_text(), runs.stdout):
        assert PASSWORD not in text


def test_undo_refuses_another_account_than_the_run_wrote_to(lg_sandbox, tmp_path: Path) -> None:
    env = env_for(lg_sandbox.base_url, tmp_path)
    run = run_import(env, tmp_path, people(4), "one")
    other = env | {"LEADGENIUS_EMAIL": lg_sandbox.other_tenant.email,
                   "LEADGENIUS_PASSWORD": lg_sandbox.other_tenant.password,
                   "LEADGENIUS_AUTH_FILE": str(tmp_path / "auth-other.json")}
    assert_clean_failure(cli("undo", run, env=other), 2, "log in as that user")
    assert len(stored(lg_sandbox, CLIENT)) == 4
    proc, _ = undo(env, tmp_path, run)  # the right account still can
    assert proc.returncode == 0 and stored(lg_sandbox, CLIENT) == []
