"""The /__admin API (reset, seed, config, state, stats) and SQLite persistence across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx

from etl.sandbox.leadgenius.app import create_app
from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT, SandboxConfig
from etl.sandbox.server import serving


def test_config_get_put_and_validation(lg_sandbox, http) -> None:
    config = lg_sandbox.admin("GET", "config")
    assert config == {"rate_limit_per_min": 0, "latency_ms": 0.0, "token_ttl_s": 3600, "drop_probability": 0.0,
                      "batch_persist_ratio": 0.5, "seed": 0, "db_path": None, "rate_window_s": 60.0}
    updated = lg_sandbox.config(rate_limit_per_min=100, latency_ms=5)
    assert updated["rate_limit_per_min"] == 100 and updated["latency_ms"] == 5 and updated["seed"] == 0
    assert lg_sandbox.admin("GET", "config") == updated
    for bad in ({"nope": 1}, {"drop_probability": 2}, {"token_ttl_s": 0}, {"rate_limit_per_min": "x"},
                {"db_path": "/tmp/x.db"}):
        r = http.put("/__admin/config", json=bad)
        assert r.status_code == 400, bad
        assert r.json()["errorType"] == "invalid_value"


def test_reset_wipes_data_and_restores_config(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=5)
    lg_sandbox.config(rate_limit_per_min=7)
    lg_sandbox.fault("500", next=5)
    lg_sandbox.reset()
    state = lg_sandbox.state()
    assert state["clients"] == [] and state["leads"] == [] and state["source_leads"] == []
    assert [t["email"] for t in state["tenants"]] == [DEMO_TENANT.email, OTHER_TENANT.email]
    assert lg_sandbox.admin("GET", "config")["rate_limit_per_min"] == 0
    assert lg_sandbox.admin("GET", "faults")["rules"] == []
    assert lg_sandbox.stats()["total"] == 0
    assert http.get("/api/clients", headers=demo).status_code == 200  # tenants and tokens still valid


def test_reset_restores_the_started_config() -> None:
    with serving(create_app(SandboxConfig(rate_limit_per_min=42, seed=3))) as server, \
            httpx.Client(base_url=server.base_url) as client:
        client.put("/__admin/config", json={"rate_limit_per_min": 1})
        assert client.post("/__admin/reset").json()["config"]["rate_limit_per_min"] == 42
        assert client.get("/__admin/config").json()["seed"] == 3


def test_seed_defaults_and_content(lg_sandbox, http, demo) -> None:
    result = lg_sandbox.admin("POST", "seed", {})
    assert result == {"client_id": "acme-corp", "created": 100}
    again = lg_sandbox.seed("acme-corp", n=3, start=100)  # by slug: same client, no new one
    assert again == {"client_id": "acme-corp", "created": 3}
    state = lg_sandbox.state()
    assert [c["clientName"] for c in state["clients"]] == ["Acme Corp"]
    emails = [x["email"] for x in state["leads"]]
    assert emails == [f"lead{i}@example.com" for i in range(103)]
    first = state["leads"][0]
    assert first["company_id"] == DEMO_TENANT.company_id and first["owner"] == DEMO_TENANT.user_id
    assert {"firstName", "lastName", "companyName", "title", "aiLeadScore"} <= set(first)
    assert sum("aiLeadScore" in x for x in state["leads"]) > 0
    # seeded leads are real leads of the API
    assert len(http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 1000})
               .json()["leads"]) == 103


def test_seed_other_tenant_and_errors(lg_sandbox, http) -> None:
    assert lg_sandbox.seed("Globex Inc", n=2, tenant=OTHER_TENANT.email)["client_id"] == "globex-inc"
    assert lg_sandbox.state(company_id=DEMO_TENANT.company_id)["leads"] == []
    assert len(lg_sandbox.state(company_id=OTHER_TENANT.company_id)["leads"]) == 2
    assert http.post("/__admin/seed", json={"tenant": "nobody@x.com"}).status_code == 404
    assert http.post("/__admin/seed", json={"table": "nope"}).status_code == 400
    assert http.post("/__admin/seed", json={"n": "many"}).status_code == 400


def test_seed_100k_leads(lg_sandbox, http) -> None:
    assert lg_sandbox.seed("Big Co", n=100_000)["created"] == 100_000
    key = lg_sandbox.api_key_headers()
    page = http.get("/api/enrich-leads/list", headers=key,
                    params={"companyId": DEMO_TENANT.company_id, "limit": 5000, "fields": "email"}).json()
    assert page["count"] == 5000 and page["items"][-1]["email"] == "lead4999@example.com"


def test_state_filters(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=3)
    lg_sandbox.seed("Globex", n=2)
    only = lg_sandbox.state(client_id="globex")
    assert len(only["leads"]) == 2 and [c["client_id"] for c in only["clients"]] == ["globex"]


def test_unknown_routes_answer_in_the_error_shape(http, demo) -> None:
    r = http.get("/api/nope", headers=demo)
    assert r.status_code == 404 and r.json()["errorType"] == "not_found"
    r = http.patch("/api/leads", headers=demo)
    assert r.status_code == 405 and r.json()["success"] is False


def test_state_survives_a_restart_with_db_path(tmp_path: Path) -> None:
    db = str(tmp_path / "lg.db")
    config = SandboxConfig(db_path=db, batch_persist_ratio=1.0)
    login = {"username": DEMO_TENANT.email, "password": DEMO_TENANT.password}
    with serving(create_app(config)) as server, httpx.Client(base_url=server.base_url) as client:
        tokens = client.post("/api/auth", json=login).json()["tokens"]
        headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
        acme = client.post("/api/clients", headers=headers, json={"clientName": "Acme Corp"}).json()["client"]
        client.post("/api/clients", headers=headers, json={"clientName": "Gone"})
        gone = client.get("/api/clients", headers=headers, params={"clientId": "gone"}).json()["client"]
        client.delete("/api/clients", headers=headers, params={"id": gone["id"]})
        created = [client.post("/api/leads", headers=headers,
                               json={"client_id": "acme-corp", "email": f"p{i}@acme.com"}).json()["lead"]
                   for i in range(3)]
        client.put("/api/leads", headers=headers, json={"id": created[0]["id"], "title": "CTO"})
        client.delete("/api/leads", headers=headers, params={"id": created[1]["id"]})
        client.post("/api/leads", headers=headers, json={"leads": [{"client_id": "acme-corp", "email": "b@x.com"}]})
        client.post("/__admin/seed", json={"client": "Acme Corp", "n": 5, "table": "source"})
        before = client.get("/__admin/state").json()

    with serving(create_app(config)) as server, httpx.Client(base_url=server.base_url) as client:
        after = client.get("/__admin/state").json()
        assert after == before
        assert [c["id"] for c in after["clients"]] == [acme["id"]]
        assert [x["email"] for x in after["leads"]] == ["p0@acme.com", "p2@acme.com", "b@x.com"]
        assert after["leads"][0]["title"] == "CTO" and len(after["source_leads"]) == 5
        # tokens and refresh tokens issued before the restart still work
        assert client.get("/api/clients", headers=headers).status_code == 200
        assert client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]}).status_code == 200
        # new leads continue after the old ones, pagination order intact
        client.post("/api/leads", headers=headers, json={"client_id": "acme-corp", "email": "new@acme.com"})
        listed = client.get("/api/leads", headers=headers, params={"client_id": "acme-corp"}).json()["leads"]
        assert [x["email"] for x in listed][-1] == "new@acme.com"
        client.post("/__admin/reset")

    with serving(create_app(config)) as server, httpx.Client(base_url=server.base_url) as client:
        state = client.get("/__admin/state").json()
        assert state["clients"] == [] and state["leads"] == []  # reset wiped the database too
