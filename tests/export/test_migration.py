"""LeadGenius -> LeadGenius migration over real HTTP: exact, idempotent, both tenants, crash-safe."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from etl.extract.leadgenius import MIGRATED_FIELDS, LeadGeniusBulkSource
from etl.mapping import Mapping
from etl.pipeline import ImportOptions, run_import
from etl.report import RunReport
from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT, Tenant
from tests.export.conftest import CLI, cli_env, tenant_settings

N = 2_500


def migrate(
    base_url: str, tmp_path: Path, src: Tenant, dst: Tenant, *, source_client: str | None, client: str
) -> RunReport:
    source = LeadGeniusBulkSource(
        tenant_settings(base_url, tmp_path, src), company_id=src.company_id, client_id=source_client
    )
    target = tenant_settings(base_url, tmp_path, dst)
    options = ImportOptions(client=client)
    return anyio.run(lambda: run_import(target, source, Mapping.builtin("leadgenius"), options))


def leads_of(sandbox: Any, tenant: Tenant, client_id: str) -> list[dict[str, Any]]:
    return list(sandbox.state(company_id=tenant.company_id, client_id=client_id)["leads"])


def content(lead: dict[str, Any]) -> dict[str, Any]:
    return {k: lead.get(k) for k in MIGRATED_FIELDS}


def add_rich_lead(sandbox: Any, tenant: Tenant, client_id: str) -> dict[str, str]:
    lead = {
        "client_id": client_id,
        "email": "rich@example.com",
        "firstName": "Rich",
        "lastName": "Notes",
        "notes": '## 🎯 AI SCORE: A (91/100)\n\n### 🧐 JUSTIFICATION\nLoves =formulas, commas, "quotes"',
        "aiColdEmail": "Hi Rich,\nshort note.",
        "aiSentiment": "positive",
        "aiRiskScore": "12",
        "phoneNumber": "+1 555 0100",
        "status": "qualified",
        "source": "hubspot",
    }
    r = httpx.post(f"{sandbox.base_url}/api/leads", json=lead, headers=sandbox.bearer(tenant))
    assert r.status_code == 201, r.text
    return lead


@pytest.mark.parametrize(
    ("src", "dst", "target_client"),
    [
        (DEMO_TENANT, OTHER_TENANT, "Imported Acme"),
        (OTHER_TENANT, DEMO_TENANT, "Imported Acme"),
        (DEMO_TENANT, DEMO_TENANT, "Acme Copy"),
    ],
    ids=["demo-to-other", "other-to-demo", "same-tenant-other-client"],
)
def test_migration_is_exact_and_a_rerun_creates_nothing(
    lg_sandbox, tmp_path: Path, src: Tenant, dst: Tenant, target_client: str
) -> None:
    lg_sandbox.seed("Acme Corp", n=N, tenant=src.email)
    lg_sandbox.seed("Noise Inc", n=40, start=90_000, tenant=src.email)  # another client: not migrated
    rich = add_rich_lead(lg_sandbox, src, "acme-corp")
    before = {lead["email"]: lead for lead in leads_of(lg_sandbox, src, "acme-corp")}

    report = migrate(lg_sandbox.base_url, tmp_path, src, dst, source_client="acme-corp", client=target_client)
    slug = report.client_id
    assert slug == target_client.lower().replace(" ", "-")
    after = leads_of(lg_sandbox, dst, slug)
    counts = Counter(lead["email"] for lead in after)
    assert set(counts) == set(before) and set(counts.values()) == {1}
    assert (report.counts.created, report.counts.confirmed, report.exit_code) == (N + 1, N + 1, 0)
    # field for field: everything but the server-set fields and client_id travels as it was
    for lead in after:
        assert content(lead) == content(before[lead["email"]])
        assert lead["company_id"] == dst.company_id and lead["id"] != before[lead["email"]]["id"]
    migrated_rich = next(lead for lead in after if lead["email"] == "rich@example.com")
    assert {k: migrated_rich[k] for k in rich if k != "client_id"} == {
        k: v for k, v in rich.items() if k != "client_id"
    }
    # the source is untouched
    assert len(leads_of(lg_sandbox, src, "acme-corp")) == N + 1

    again = migrate(lg_sandbox.base_url, tmp_path, src, dst, source_client="acme-corp", client=target_client)
    assert (again.counts.created, again.counts.unchanged, again.exit_code) == (0, N + 1, 0)
    assert len(leads_of(lg_sandbox, dst, slug)) == N + 1


def test_migration_of_every_client_lands_in_one_client(lg_sandbox, tmp_path: Path) -> None:
    lg_sandbox.seed("Acme Corp", n=300)
    lg_sandbox.seed("Beta Labs", n=200, start=1000)
    report = migrate(lg_sandbox.base_url, tmp_path, DEMO_TENANT, OTHER_TENANT, source_client=None, client="All Of Demo")
    assert report.counts.created == 500 == len(leads_of(lg_sandbox, OTHER_TENANT, "all-of-demo"))


def test_kill_9_midway_then_rerun_gives_exactly_one_lead_per_email(lg_sandbox, tmp_path: Path) -> None:
    n = 1_500
    lg_sandbox.seed("Acme Corp", n=n)
    lg_sandbox.config(latency_ms=15)  # slow enough to be caught midway
    env = cli_env(lg_sandbox.base_url, tmp_path)
    args = [
        *CLI,
        "import",
        "leadgenius",
        "--company-id",
        "company-demo",
        "--source-client",
        "acme-corp",
        "--client",
        "Crash Copy",
        "--concurrency",
        "4",
        "--quiet",
    ]
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    created = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            created = len(leads_of(lg_sandbox, DEMO_TENANT, "crash-copy"))
            if created >= 200:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the migration finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = len(leads_of(lg_sandbox, DEMO_TENANT, "crash-copy"))
    assert 200 <= partial < n

    lg_sandbox.config(latency_ms=0)
    rerun = subprocess.run([*args, "--report", "r.json"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()
    counts = Counter(lead["email"] for lead in leads_of(lg_sandbox, DEMO_TENANT, "crash-copy"))
    assert len(counts) == n and set(counts.values()) == {1}
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"]["confirmed"] == n
    assert report["counts"]["created"] + report["counts"]["unchanged"] == n
