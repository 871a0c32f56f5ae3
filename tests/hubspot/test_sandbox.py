"""The HubSpot sandbox itself, over HTTP: rate limits and their headers, faults, admin truth."""

from __future__ import annotations

import httpx
import pytest

from etl.sandbox.hubspot.app import SANDBOX_TOKEN
from tests.hubspot.conftest import HSSandbox

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


def test_ten_second_rolling_limit_answers_429_with_hubspot_headers_and_body(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.config(rate_limit_per_10s=3)
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        oks = [http.get("/crm/v3/objects/contacts") for _ in range(3)]
        refused = http.get("/crm/v3/objects/contacts")
    assert [r.status_code for r in oks] == [200, 200, 200]
    assert oks[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert oks[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in oks] == ["2", "1", "0"]
    assert "X-HubSpot-RateLimit-Secondly" in oks[0].headers
    assert "X-HubSpot-RateLimit-Secondly-Remaining" in oks[0].headers
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    body = refused.json()
    assert body["category"] == "RATE_LIMITS" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["status"] == "error" and body["correlationId"]
    # admin is never limited
    assert hs_sandbox.stats()["requests"]["contacts_page"] == {"200": 3, "429": 1}


def test_search_has_its_own_per_second_limit(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.config(rate_limit_per_10s=0, search_per_s=2)
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        codes = [http.post("/crm/v3/objects/contacts/search", json={}).status_code for _ in range(3)]
        assert http.get("/crm/v3/objects/contacts").status_code == 200  # other endpoints unaffected
    assert codes == [200, 200, 429]


def test_faults_fire_before_auth_and_work_then_stop(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.fault("503", next=2, route="contacts_page")
    with httpx.Client(base_url=hs_sandbox.base_url) as http:
        first = http.get("/crm/v3/objects/contacts", headers=AUTH)
        second = http.get("/crm/v3/objects/contacts")  # no token: the fault still comes first
        third = http.get("/crm/v3/objects/contacts")
        search = http.post("/crm/v3/objects/contacts/search", json={}, headers=AUTH)
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 401)
    assert first.headers["Retry-After"] == "1"
    assert search.status_code == 200  # other routes untouched
    assert hs_sandbox.stats()["faults_fired"] == {"503": 2}
    hs_sandbox.fault("500", probability=1.0)
    hs_sandbox.admin("DELETE", "faults")
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        assert http.get("/crm/v3/objects/contacts").status_code == 200


def test_drop_fault_breaks_the_connection(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.fault("drop", next=1)
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        with pytest.raises(httpx.TransportError):
            http.get("/crm/v3/objects/contacts")
        assert http.get("/crm/v3/objects/contacts").status_code == 200


def test_seed_is_deterministic_adversarial_and_tells_the_truth(hs_sandbox: HSSandbox) -> None:
    summary = hs_sandbox.seed(2_000, seed=4)
    first = hs_sandbox.state()
    assert hs_sandbox.seed(2_000, seed=4) == summary
    second = hs_sandbox.state()
    assert [c["properties"]["email"] for c in first["contacts"]] == [
        c["properties"]["email"] for c in second["contacts"]
    ]
    contacts = first["contacts"]
    assert len(contacts) == 2_000
    assert summary["deleted_companies"] == len(first["deleted_companies"]) > 0
    props = [c["properties"] for c in contacts]
    assert any(p["email"] is None for p in props)
    assert any(p["lastname"] == "." for p in props)
    assert any(p["phone"] and not p["mobilephone"] for p in props)
    assert any(p["mobilephone"] and not p["phone"] for p in props)
    assert any(p["email"] and " " in p["email"] for p in props)
    assert any(not (p["firstname"] or "").strip() for p in props)
    assert any(len(c["companies"]) > 1 and c["primary"] in c["companies"] for c in contacts)
    assert summary["duplicate_emails"] > 0 and summary["company_property_set"] > 0
    # many contacts share a lastmodifieddate (ms precision): tie-breaking matters
    stamps = [p["lastmodifieddate"] for p in props]
    assert len(set(stamps)) < len(stamps) / 3
    assert all(len(s) == 24 and s.endswith("Z") and s[19] == "." for s in stamps)


def test_touch_bumps_timestamps_in_shared_groups_and_archive_hides_from_search(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(300, seed=1)
    before = {c["id"]: c["properties"]["lastmodifieddate"] for c in hs_sandbox.state()["contacts"]}
    touched = hs_sandbox.touch(n=40, seed=2, group=10)
    after = {c["id"]: c["properties"]["lastmodifieddate"] for c in hs_sandbox.state()["contacts"]}
    assert len(touched) == 40
    assert {i for i in after if after[i] != before[i]} == set(touched)
    assert len({after[i] for i in touched}) == 4
    hs_sandbox.admin("POST", "archive", {"ids": touched[:5]})
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        found = http.post(
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": touched}]}],
                "limit": 100,
            },
        ).json()
    assert {r["id"] for r in found["results"]} == set(touched[5:]) and found["total"] == 35
