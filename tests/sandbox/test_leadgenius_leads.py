"""SPEC A3: leads, pagination and the seven quirks, checked against GET /__admin/state."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from etl.fields import LEAD_FIELDS
from etl.sandbox.leadgenius.store import DEMO_TENANT

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LEAD_ID = re.compile(r"^lead-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["errorType"] == error_type
    assert {"error", "details", "recommendation"} <= set(body)


def lead(i: int, **extra: str) -> dict[str, str]:
    return {"client_id": "acme-corp", "firstName": f"F{i}", "lastName": f"L{i}", "email": f"p{i}@acme.com", **extra}


def list_all(http: httpx.Client, headers: dict[str, str], client_id: str, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"client_id": client_id, "limit": limit}
        if token:
            params["nextToken"] = token
        body = http.get("/api/leads", headers=headers, params=params).json()
        out.extend(body["leads"])
        token = body["nextToken"]
        if not token:
            return out


@pytest.fixture
def acme(http, demo) -> dict[str, Any]:
    r = http.post("/api/clients", headers=demo, json={"clientName": "Acme Corp"})
    return dict(r.json()["client"])


def test_create_single_lead_sets_server_fields(lg_sandbox, http, demo, acme) -> None:
    payload = {f: f"value of {f}" for f in LEAD_FIELDS}
    payload |= {"client_id": "acme-corp", "email": "Jane@Acme.com", "lastName": "Doe"}
    r = http.post("/api/leads", headers=demo, json=payload)
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True
    stored = body["lead"]
    assert LEAD_ID.match(stored["id"])
    assert stored["company_id"] == DEMO_TENANT.company_id and stored["owner"] == DEMO_TENANT.user_id
    assert ISO_Z.match(stored["createdAt"]) and stored["createdAt"] == stored["updatedAt"]
    assert {k: stored[k] for k in payload} == payload
    assert lg_sandbox.state()["leads"] == [stored]


def test_get_leads_requires_client_id_and_limit_range(http, demo, acme) -> None:
    assert_error(http.get("/api/leads", headers=demo), 400, "missing_required_field")
    for bad in ("0", "1001", "-3"):
        assert_error(http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": bad}),
                     400, "invalid_value")
    assert_error(http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": "ten"}),
                 400, "invalid_format")
    assert_error(http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "nextToken": "%%%"}),
                 400, "invalid_format")
    assert_error(http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "nextToken": "bm9wZQ"}),
                 400, "invalid_format")


def test_pagination_to_the_end_with_total_lying(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=250)
    first = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp"}).json()
    assert len(first["leads"]) == 100  # default limit
    assert first["total"] == 100  # quirk 6: the page size, not the 250 in the collection
    assert first["nextToken"]
    leads = list_all(http, demo, "acme-corp", 100)
    assert [x["email"] for x in leads] == [f"lead{i}@example.com" for i in range(250)]
    last = http.get("/api/leads", headers=demo,
                    params={"client_id": "acme-corp", "limit": 100, "nextToken": first["nextToken"]}).json()
    assert last["total"] == 100


def test_full_page_carries_token_even_when_nothing_follows(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=10)
    page = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 10}).json()
    assert len(page["leads"]) == 10 and page["nextToken"] is not None
    empty = http.get("/api/leads", headers=demo,
                     params={"client_id": "acme-corp", "limit": 10, "nextToken": page["nextToken"]}).json()
    assert empty == {"success": True, "leads": [], "total": 0, "nextToken": None}
    short = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 11}).json()
    assert len(short["leads"]) == 10 and short["nextToken"] is None


def test_next_token_survives_inserts_and_deletes(lg_sandbox, http, demo) -> None:
    lg_sandbox.seed("Acme Corp", n=6)
    page1 = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 3}).json()
    state = lg_sandbox.state()["leads"]
    # delete the first lead of the next page and the last of this one, insert a new lead
    http.request("DELETE", "/api/leads", headers=demo, json={"ids": [state[3]["id"], state[2]["id"]]})
    http.post("/api/leads", headers=demo, json=lead(99))
    page2 = http.get("/api/leads", headers=demo,
                     params={"client_id": "acme-corp", "limit": 3, "nextToken": page1["nextToken"]}).json()
    assert [x["email"] for x in page2["leads"]] == ["lead4@example.com", "lead5@example.com", "p99@acme.com"]


def test_quirk1_batch_post_reports_all_stores_some(lg_sandbox, http, demo, acme) -> None:
    r = http.post("/api/leads", headers=demo, json={"leads": [lead(i) for i in range(40)]})
    assert r.status_code == 201
    assert r.json() == {"success": True, "created": 40, "skipped": []}
    stored = len(lg_sandbox.state()["leads"])
    assert 0 < stored < 40  # default ratio 0.5, seeded
    assert lg_sandbox.stats()["batch_not_persisted"] == 40 - stored

    lg_sandbox.config(batch_persist_ratio=0.0)
    r = http.post("/api/leads", headers=demo, json={"leads": [lead(i) for i in range(100, 110)]})
    assert r.json()["created"] == 10
    assert len(lg_sandbox.state()["leads"]) == stored  # nothing at all this time

    lg_sandbox.config(batch_persist_ratio=1.0)
    http.post("/api/leads", headers=demo, json={"leads": [lead(i) for i in range(200, 205)]})
    assert len(lg_sandbox.state()["leads"]) == stored + 5


def test_quirk1_is_deterministic_for_a_seed(lg_sandbox, http, demo) -> None:
    def run() -> list[str]:
        lg_sandbox.reset()
        headers = lg_sandbox.bearer()
        http.post("/api/leads", headers=headers, json={"leads": [lead(i) for i in range(30)]})
        return [x["email"] for x in lg_sandbox.state()["leads"]]

    assert run() == run()


@pytest.mark.parametrize(
    ("extra", "quirk"),
    [
        ({"phone": "+1 555"}, "unknown_field"),  # quirk 2
        ({"id": "lead-mine"}, "unknown_field"),  # server-set fields are not accepted on create
        ({"company_id": "company-other"}, "unknown_field"),
        ({"owner": "me"}, "unknown_field"),
        ({"createdAt": "2026-01-01T00:00:00Z"}, "unknown_field"),
        ({"updatedAt": "2026-01-01T00:00:00Z"}, "unknown_field"),
        ({"title": ""}, "empty_value"),  # quirk 3
        ({"title": "   "}, "empty_value"),
        ({"notes": None}, "null_value"),
        ({"aiLeadScore": 87}, "non_string_value"),
        ({"lastName": "."}, "punctuation_last_name"),  # quirk 4
        ({"lastName": ".."}, "punctuation_last_name"),
        ({"lastName": ", "}, "punctuation_last_name"),
        ({"lastName": "- "}, "punctuation_last_name"),
    ],
)
def test_quirks_2_3_4_answer_500_and_store_nothing(lg_sandbox, http, demo, extra, quirk) -> None:
    r = http.post("/api/leads", headers=demo, json=lead(1) | extra)
    assert_error(r, 500, "internal_error")
    assert lg_sandbox.state()["leads"] == []
    stats = lg_sandbox.stats()
    assert stats["quirk_500"][quirk] == 1
    assert sum(stats["quirk_500"].values()) == 1 and sum(stats["injected"].values()) == 0


@pytest.mark.parametrize("last_name", ["-", "--", "O'Brien", "Smith-Jones", "Lee."])
def test_quirk4_dashes_and_real_names_are_fine(lg_sandbox, http, demo, last_name) -> None:
    r = http.post("/api/leads", headers=demo, json=lead(1, lastName=last_name))
    assert r.status_code == 201
    assert lg_sandbox.state()["leads"][0]["lastName"] == last_name


def test_batch_with_one_bad_item_fails_whole(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(batch_persist_ratio=1.0)
    items = [lead(0), lead(1, phone="555"), lead(2)]
    assert_error(http.post("/api/leads", headers=demo, json={"leads": items}), 500, "internal_error")
    assert lg_sandbox.state()["leads"] == []
    assert lg_sandbox.stats()["quirk_500"]["batch_item"] == 1

    seeded = lg_sandbox.seed("Acme Corp", n=2)
    ids = [x["id"] for x in lg_sandbox.state()["leads"]]
    bad_update = [{"id": ids[0], "notes": "ok"}, {"id": ids[1], "notes": ""}]
    assert_error(http.put("/api/leads", headers=demo, json={"leads": bad_update}), 500, "internal_error")
    assert all("notes" not in x for x in lg_sandbox.state()["leads"])
    assert seeded["created"] == 2


def test_create_requires_client_id(http, demo) -> None:
    assert_error(http.post("/api/leads", headers=demo, json={"email": "x@y.com"}), 400, "missing_required_field")
    assert_error(http.post("/api/leads", headers=demo, content=b"{not json"), 400, "invalid_format")


def test_quirk5_invisible_leads_live_under_the_uuid(lg_sandbox, http, demo, acme) -> None:
    r = http.post("/api/leads", headers=demo, json=lead(1, client_id=acme["id"]))
    assert r.status_code == 201
    assert http.get("/api/leads", headers=demo, params={"client_id": "acme-corp"}).json()["leads"] == []
    under_uuid = http.get("/api/leads", headers=demo, params={"client_id": acme["id"]}).json()["leads"]
    assert [x["email"] for x in under_uuid] == ["p1@acme.com"]
    truth = lg_sandbox.state()["leads"]
    assert len(truth) == 1 and truth[0]["client_id"] == acme["id"]


def test_quirk7_no_dedup(lg_sandbox, http, demo, acme) -> None:
    for _ in range(2):
        assert http.post("/api/leads", headers=demo, json=lead(1)).status_code == 201
    emails = [x["email"] for x in lg_sandbox.state()["leads"]]
    assert emails == ["p1@acme.com", "p1@acme.com"]


def test_update_single_and_batch(lg_sandbox, http, demo, acme) -> None:
    created = [http.post("/api/leads", headers=demo, json=lead(i)).json()["lead"] for i in range(3)]
    r = http.put("/api/leads", headers=demo, json={"id": created[0]["id"], "title": "CTO", "notes": "hi"})
    assert r.status_code == 200
    updated = r.json()["lead"]
    assert updated["title"] == "CTO" and updated["notes"] == "hi" and updated["email"] == "p0@acme.com"
    assert updated["createdAt"] == created[0]["createdAt"] and ISO_Z.match(updated["updatedAt"])
    assert_error(http.put("/api/leads", headers=demo, json={"id": "lead-nope", "title": "x"}), 404, "not_found")
    assert_error(http.put("/api/leads", headers=demo, json={"id": created[0]["id"], "phone": "1"}),
                 500, "internal_error")

    r = http.put("/api/leads", headers=demo,
                 json={"leads": [{"id": created[1]["id"], "notes": "n1"}, {"id": created[2]["id"], "notes": "n2"}]})
    assert r.json() == {"success": True, "updated": 2}
    notes = {x["email"]: x.get("notes") for x in lg_sandbox.state()["leads"]}
    assert notes == {"p0@acme.com": "hi", "p1@acme.com": "n1", "p2@acme.com": "n2"}


def test_update_client_id_moves_the_lead(lg_sandbox, http, demo, acme) -> None:
    created = http.post("/api/leads", headers=demo, json=lead(1, client_id=acme["id"])).json()["lead"]
    http.put("/api/leads", headers=demo, json={"id": created["id"], "client_id": "acme-corp"})
    listed = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp"}).json()["leads"]
    assert [x["id"] for x in listed] == [created["id"]]
    assert http.get("/api/leads", headers=demo, params={"client_id": acme["id"]}).json()["leads"] == []


def test_delete_single_and_batch(lg_sandbox, http, demo, acme) -> None:
    ids = [http.post("/api/leads", headers=demo, json=lead(i)).json()["lead"]["id"] for i in range(4)]
    assert http.delete("/api/leads", headers=demo, params={"id": ids[0]}).json() == {"success": True}
    assert_error(http.delete("/api/leads", headers=demo, params={"id": ids[0]}), 404, "not_found")
    r = http.request("DELETE", "/api/leads", headers=demo, json={"ids": [ids[1], ids[2], "lead-missing"]})
    assert r.json() == {"success": True, "deleted": 2}
    assert [x["id"] for x in lg_sandbox.state()["leads"]] == [ids[3]]
    assert_error(http.delete("/api/leads", headers=demo), 400, "missing_required_field")


def test_find_lead(lg_sandbox, http, demo, other, acme) -> None:
    http.post("/api/clients", headers=demo, json={"clientName": "Globex"})
    a = http.post("/api/leads", headers=demo, json=lead(1, linkedinUrl="https://linkedin.com/in/p1")).json()["lead"]
    b = http.post("/api/leads", headers=demo, json=lead(1, client_id="globex")).json()["lead"]
    found = http.get("/api/find-lead", headers=demo, params={"email": "P1@ACME.com"}).json()
    assert found["success"] is True and [x["id"] for x in found["leads"]] == [a["id"], b["id"]]
    scoped = http.get("/api/find-lead", headers=demo, params={"email": "p1@acme.com", "client_id": "globex"})
    assert [x["id"] for x in scoped.json()["leads"]] == [b["id"]]
    by_url = http.get("/api/find-lead", headers=demo, params={"linkedinUrl": "https://linkedin.com/in/p1"})
    assert [x["id"] for x in by_url.json()["leads"]] == [a["id"]]
    assert http.get("/api/find-lead", headers=demo, params={"email": "none@x.com"}).json() == {
        "success": True, "leads": []}
    assert http.get("/api/find-lead", headers=other, params={"email": "p1@acme.com"}).json()["leads"] == []
    assert_error(http.get("/api/find-lead", headers=demo), 400, "missing_required_field")
    # an email change is reflected by the index
    http.put("/api/leads", headers=demo, json={"id": a["id"], "email": "new@acme.com"})
    assert [x["id"] for x in http.get("/api/find-lead", headers=demo, params={"email": "new@acme.com"})
            .json()["leads"]] == [a["id"]]


def test_enrich_leads_by_id(lg_sandbox, http, demo, other, acme) -> None:
    created = http.post("/api/leads", headers=demo, json=lead(1)).json()["lead"]
    r = http.get(f"/api/enrich-leads/{created['id']}", headers=demo)
    assert r.json() == {"success": True, "lead": created}
    r = http.put(f"/api/enrich-leads/{created['id']}", headers=demo, json={"aiLeadScore": "91"})
    assert r.status_code == 200 and r.json()["lead"]["aiLeadScore"] == "91"
    assert lg_sandbox.state()["leads"][0]["aiLeadScore"] == "91"
    assert_error(http.get("/api/enrich-leads/lead-nope", headers=demo), 404, "not_found")
    assert_error(http.put("/api/enrich-leads/lead-nope", headers=demo, json={"notes": "x"}), 404, "not_found")
    assert_error(http.get(f"/api/enrich-leads/{created['id']}", headers=other), 404, "not_found")
    assert_error(http.put(f"/api/enrich-leads/{created['id']}", headers=other, json={"notes": "x"}),
                 404, "not_found")
    assert_error(http.delete("/api/leads", headers=other, params={"id": created["id"]}), 404, "not_found")
    assert "notes" not in lg_sandbox.state()["leads"][0]
