"""SPEC A2: clients (slug vs UUID, 409, purge 504) and tenant isolation."""

from __future__ import annotations

import re

import httpx

from etl.sandbox.leadgenius.store import DEMO_TENANT

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["errorType"] == error_type
    assert {"error", "details", "recommendation"} <= set(body)


def test_create_client_shape_and_slug(lg_sandbox, http, demo) -> None:
    r = http.post("/api/clients", headers=demo,
                  json={"clientName": "Acme Corp", "companyURL": "https://acme.com", "description": "B2B"})
    assert r.status_code == 201
    client = r.json()["client"]
    assert r.json()["success"] is True
    assert set(client) == {"id", "client_id", "clientName", "companyURL", "description", "owner", "company_id",
                           "createdAt"}
    assert UUID.match(client["id"])
    assert client["client_id"] == "acme-corp"
    assert client["owner"] == DEMO_TENANT.user_id and client["company_id"] == DEMO_TENANT.company_id
    assert ISO_Z.match(client["createdAt"])
    assert lg_sandbox.state()["clients"] == [client]


def test_slug_rules_and_409(http, demo) -> None:
    r = http.post("/api/clients", headers=demo, json={"clientName": "  Café  Déjà Vu!! Ltd. "})
    assert r.json()["client"]["client_id"] == "cafe-deja-vu-ltd"
    assert_error(http.post("/api/clients", headers=demo, json={"clientName": "cafe deja-vu ltd"}),
                 409, "already_exists")
    assert_error(http.post("/api/clients", headers=demo, json={"description": "x"}), 400, "missing_required_field")
    assert_error(http.post("/api/clients", headers=demo, json={"clientName": ""}), 400, "missing_required_field")


def test_get_list_update_delete(lg_sandbox, http, demo) -> None:
    created = [http.post("/api/clients", headers=demo, json={"clientName": n}).json()["client"]
               for n in ("Acme Corp", "Globex")]
    listed = http.get("/api/clients", headers=demo).json()
    assert listed["success"] is True and [c["client_id"] for c in listed["clients"]] == ["acme-corp", "globex"]

    by_id = http.get("/api/clients", headers=demo, params={"clientId": created[0]["id"]}).json()
    by_slug = http.get("/api/clients", headers=demo, params={"clientId": "acme-corp"}).json()
    assert by_id == by_slug == {"success": True, "client": created[0]}
    assert_error(http.get("/api/clients", headers=demo, params={"clientId": "nope"}), 404, "not_found")

    r = http.put("/api/clients", headers=demo,
                 json={"id": created[0]["id"], "clientName": "Acme Corporation", "description": "updated"})
    assert r.status_code == 200
    updated = r.json()["client"]
    assert updated["clientName"] == "Acme Corporation" and updated["description"] == "updated"
    assert updated["client_id"] == "acme-corp"  # the slug never moves: leads keep pointing at it
    assert_error(http.put("/api/clients", headers=demo, json={"id": "nope", "clientName": "x"}), 404, "not_found")
    assert_error(http.put("/api/clients", headers=demo, json={"clientName": "x"}), 400, "missing_required_field")

    r = http.delete("/api/clients", headers=demo, params={"id": created[1]["id"]})
    assert r.status_code == 200 and r.json()["success"] is True
    assert [c["client_id"] for c in lg_sandbox.state()["clients"]] == ["acme-corp"]
    assert_error(http.delete("/api/clients", headers=demo, params={"id": created[1]["id"]}), 404, "not_found")


def test_delete_without_purge_keeps_leads_purge_deletes_them(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=30)
    lg_sandbox.seed("Globex", n=5)
    acme = http.get("/api/clients", headers=demo, params={"clientId": "acme-corp"}).json()["client"]
    r = http.delete("/api/clients", headers=demo, params={"id": acme["id"], "purge": "true"})
    assert r.status_code == 200
    state = lg_sandbox.state()
    assert [c["client_id"] for c in state["clients"]] == ["globex"]
    assert {lead["client_id"] for lead in state["leads"]} == {"globex"} and len(state["leads"]) == 5

    globex = state["clients"][0]
    assert http.delete("/api/clients", headers=demo, params={"id": globex["id"]}).status_code == 200
    assert len(lg_sandbox.state()["leads"]) == 5  # without purge the leads stay (orphaned)


def test_purge_over_1000_leads_is_504_and_deletes_nothing(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=1001)
    acme = http.get("/api/clients", headers=demo, params={"clientId": "acme-corp"}).json()["client"]
    r = http.delete("/api/clients", headers=demo, params={"id": acme["id"], "purge": "true"})
    assert r.status_code == 504
    assert r.json()["success"] is False
    state = lg_sandbox.state()
    assert len(state["clients"]) == 1 and len(state["leads"]) == 1001

    # exactly 1,000 is still fine
    lead_id = state["leads"][0]["id"]
    assert http.delete("/api/leads", headers=demo, params={"id": lead_id}).status_code == 200
    assert http.delete("/api/clients", headers=demo, params={"id": acme["id"], "purge": "true"}).status_code == 200
    assert lg_sandbox.state()["leads"] == []


def test_tenants_are_isolated(lg_sandbox, http, demo, other) -> None:
    mine = http.post("/api/clients", headers=demo, json={"clientName": "Acme Corp"}).json()["client"]
    # the same slug in another company is not a conflict, and each sees only its own
    theirs = http.post("/api/clients", headers=other, json={"clientName": "Acme Corp"})
    assert theirs.status_code == 201
    theirs_client = theirs.json()["client"]
    assert theirs_client["company_id"] == "company-other"
    assert http.get("/api/clients", headers=demo).json()["clients"] == [mine]
    assert http.get("/api/clients", headers=other).json()["clients"] == [theirs_client]
    assert_error(http.get("/api/clients", headers=other, params={"clientId": mine["id"]}), 404, "not_found")
    assert_error(http.put("/api/clients", headers=other, json={"id": mine["id"], "clientName": "pwned"}),
                 404, "not_found")
    assert_error(http.delete("/api/clients", headers=other, params={"id": mine["id"]}), 404, "not_found")
    assert http.get("/api/clients", headers=demo, params={"clientId": mine["id"]}).json()["client"] == mine

    # leads under the same slug stay invisible to the other tenant
    http.post("/api/leads", headers=demo, json={"client_id": "acme-corp", "email": "mine@acme.com"})
    r = http.get("/api/leads", headers=other, params={"client_id": "acme-corp"})
    assert r.json()["leads"] == []
    assert http.get("/api/find-lead", headers=other, params={"email": "mine@acme.com"}).json()["leads"] == []
    assert len(http.get("/api/leads", headers=demo, params={"client_id": "acme-corp"}).json()["leads"]) == 1
