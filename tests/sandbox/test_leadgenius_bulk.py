"""SPEC A4: bulk extraction with the API key (enrich and source tables)."""

from __future__ import annotations

from typing import Any

import httpx

from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["errorType"] == error_type


def drain(http: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    token = None
    while True:
        query = {"companyId": DEMO_TENANT.company_id, **params}
        if token:
            query["nextToken"] = token
        r = http.get(path, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and body["count"] == len(body["items"])
        items.extend(body["items"])
        pages += 1
        token = body["nextToken"]
        if not token:
            return items, pages


def test_credentials(lg_sandbox, http) -> None:
    params = {"companyId": DEMO_TENANT.company_id}
    key = lg_sandbox.api_key_headers()
    assert_error(http.get("/api/enrich-leads/list", params=params), 401, "no_valid_credentials")
    assert_error(http.get("/api/enrich-leads/list", params=params,
                          headers={"x-api-key": "lgk_wrong", "x-user-id": DEMO_TENANT.user_id}),
                 401, "no_valid_credentials")
    assert_error(http.get("/api/enrich-leads/list", params=params, headers={"x-api-key": DEMO_TENANT.api_key}),
                 401, "no_valid_credentials")
    assert_error(http.get("/api/enrich-leads/list", params=params,
                          headers={"x-api-key": DEMO_TENANT.api_key, "x-user-id": OTHER_TENANT.user_id}),
                 403, "owner_mismatch")
    assert_error(http.get("/api/enrich-leads/list", headers=key), 400, "missing_required_field")
    assert_error(http.get("/api/enrich-leads/list", params={"companyId": OTHER_TENANT.company_id}, headers=key),
                 403, "insufficient_permissions")
    assert_error(http.get("/api/source-leads/list", params={"companyId": OTHER_TENANT.company_id}, headers=key),
                 403, "insufficient_permissions")


def test_limits(lg_sandbox, http) -> None:
    lg_sandbox.seed("Acme Corp", n=1200)
    key = lg_sandbox.api_key_headers()
    base = {"companyId": DEMO_TENANT.company_id}
    page = http.get("/api/enrich-leads/list", params=base, headers=key).json()
    assert page["count"] == 1000 and page["nextToken"]  # default limit 1000
    assert http.get("/api/enrich-leads/list", params=base | {"limit": 5000}, headers=key).json()["count"] == 1200
    for bad in (0, 5001):
        assert_error(http.get("/api/enrich-leads/list", params=base | {"limit": bad}, headers=key),
                     400, "invalid_value")
    assert_error(http.get("/api/enrich-leads/list", params=base | {"nextToken": "zz"}, headers=key),
                 400, "invalid_format")


def test_client_filter_all_default_and_pagination(lg_sandbox, http) -> None:
    lg_sandbox.seed("Acme Corp", n=120)
    lg_sandbox.seed("Globex", n=30, start=1000)
    lg_sandbox.seed("Acme Corp", n=7, tenant=OTHER_TENANT.email)  # another tenant, same slug: invisible
    key = lg_sandbox.api_key_headers()
    everything, pages = drain(http, "/api/enrich-leads/list", key, limit=50)
    assert len(everything) == 150 and pages == 4  # 3 full pages, each with a token, then an empty one
    assert {x["company_id"] for x in everything} == {DEMO_TENANT.company_id}
    for client_id in ("ALL", "DEFAULT", ""):
        items, _ = drain(http, "/api/enrich-leads/list", key, limit=5000, clientId=client_id)
        assert len(items) == 150
    acme, _ = drain(http, "/api/enrich-leads/list", key, limit=1000, clientId="acme-corp")
    assert len(acme) == 120 and {x["client_id"] for x in acme} == {"acme-corp"}
    # the other tenant's own key sees only its 7
    theirs, _ = drain(http, "/api/enrich-leads/list", lg_sandbox.api_key_headers(OTHER_TENANT),
                      companyId=OTHER_TENANT.company_id)
    assert len(theirs) == 7


def test_fields_projection(lg_sandbox, http) -> None:
    lg_sandbox.seed("Acme Corp", n=5)
    key = lg_sandbox.api_key_headers()
    r = http.get("/api/enrich-leads/list", headers=key,
                 params={"companyId": DEMO_TENANT.company_id, "fields": "email, firstName,aiLeadScore"})
    items = r.json()["items"]
    assert set(items[0]) == {"id", "email", "firstName", "aiLeadScore"}  # lead0 has AI fields
    assert set(items[1]) == {"id", "email", "firstName"}  # absent fields are not invented
    truth = {x["id"]: x for x in lg_sandbox.state()["leads"]}
    assert all(item["email"] == truth[item["id"]]["email"] for item in items)


def test_source_leads_table(lg_sandbox, http) -> None:
    result = lg_sandbox.seed("Acme Corp", n=12, table="source")
    assert result == {"client_id": "acme-corp", "created": 12}
    key = lg_sandbox.api_key_headers()
    items, _ = drain(http, "/api/source-leads/list", key, clientId="acme-corp")
    assert len(items) == 12
    assert drain(http, "/api/enrich-leads/list", key)[0] == []
    state = lg_sandbox.state()
    assert len(state["source_leads"]) == 12 and state["leads"] == []
