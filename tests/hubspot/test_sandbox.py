"""The HubSpot sandbox itself, over HTTP: rate limits and their headers, faults, admin truth."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.contacts import PublicMergeInput

from etl.extract.hubspot import iso_to_ms
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


def test_search_answers_carry_no_rate_headers_and_spend_nothing_of_the_ten_second_window(hs_sandbox: HSSandbox) -> None:
    # HubSpot's search endpoints answer with no X-HubSpot-RateLimit-* header (a client cannot pace
    # them from headers) and have their own per-second limit, apart from the 10-s one.
    hs_sandbox.config(rate_limit_per_10s=2, search_per_s=0, daily_limit=1000)
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        searches = [http.post("/crm/v3/objects/contacts/search", json={}) for _ in range(4)]
        pages = [http.get("/crm/v3/objects/contacts") for _ in range(2)]
    assert [r.status_code for r in searches] == [200] * 4
    assert not [k for r in searches for k in r.headers if k.lower().startswith("x-hubspot-ratelimit")]
    assert [r.status_code for r in pages] == [200, 200]  # the four searches took none of the two
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in pages] == ["1", "0"]
    assert pages[0].headers["X-HubSpot-RateLimit-Daily"] == "1000"
    assert [r.headers["X-HubSpot-RateLimit-Daily-Remaining"] for r in pages] == ["999", "998"]


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


# --- the behaviours issue 13 is about, through the official client where HubSpot has an endpoint ---


def _search_since(client: Any, since_ms: int, obj: str = "contacts", prop: str = "lastmodifieddate") -> list[str]:
    api = getattr(client.crm, obj).search_api
    body = {"filterGroups": [{"filters": [{"propertyName": prop, "operator": "GTE", "value": str(since_ms)}]}],
            "properties": ["email", "name"], "limit": 200}
    return sorted(r.id for r in api.do_search(body).results)


def test_index_lag_hides_a_write_from_search_only_for_the_lag(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(40, seed=1, adversarial=False)
    hs_sandbox.config(index_lag_ms=1500)
    client = hs_sandbox.client()
    since = round(time.time() * 1000) - 5
    touched = hs_sandbox.touch(ids=["160", "170"])
    truth = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    # the true time is kept: lastmodifieddate says "just now", but search does not see it yet
    assert all(iso_to_ms(truth[i]["properties"]["lastmodifieddate"]) >= since for i in touched)
    assert _search_since(client, since) == []
    # and a full list (not search) sees it at once
    assert {r.id for r in client.crm.contacts.basic_api.get_page(limit=100).results} >= set(touched)
    time.sleep(1.6)
    assert _search_since(client, since) == sorted(touched)


def test_company_rename_bumps_only_the_company_and_switch_bumps_nothing(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(60, seed=2, adversarial=False)
    client = hs_sandbox.client()
    before = hs_sandbox.state()
    contact = next(c for c in before["contacts"] if c["primary"])
    company = contact["primary"]
    other = next(co["id"] for co in before["companies"] if co["id"] != company)
    since = round(time.time() * 1000) - 5
    client.crm.companies.batch_api.update({"inputs": [{"id": company, "properties": {"name": "Renamed Ltd"}}]})
    assert _search_since(client, since, "companies", "hs_lastmodifieddate") == [company]
    assert _search_since(client, since) == []  # no contact moved
    client.crm.associations.v4.basic_api.create(
        "contacts", contact["id"], "companies", other,
        [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)],
    )
    after = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    assert after[contact["id"]]["primary"] == other
    assert after[contact["id"]]["properties"]["lastmodifieddate"] == contact["properties"]["lastmodifieddate"]
    assert _search_since(client, since) == []  # the switch left no trace a search can find
    # company -> contacts through v4: the Primary label is typeId 2 in this direction
    page = client.crm.associations.v4.batch_api.get_page("companies", "contacts", {"inputs": [{"id": other}]})
    primary_of = {t.to_object_id for r in page.results for t in r.to if any(a.type_id == 2 for a in t.association_types)}
    assert contact["id"] in primary_of


def test_merge_makes_the_merged_away_contact_vanish_everywhere(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(30, seed=3, adversarial=False)
    client = hs_sandbox.client()
    truth = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    gone_email = truth["152"]["properties"]["email"]
    survivor = client.crm.contacts.basic_api.merge(PublicMergeInput(object_id_to_merge="152", primary_object_id="151"))
    assert survivor.id == "151"
    assert survivor.properties["hs_merged_object_ids"] == "152"
    assert survivor.properties["hs_additional_emails"] == gone_email
    listed = {r.id for r in client.crm.contacts.basic_api.get_page(limit=100).results}
    archived = {r.id for r in client.crm.contacts.basic_api.get_page(limit=100, archived=True).results}
    assert "152" not in listed | archived and "151" in listed
    assert "152" not in _search_since(client, 0)
    read = client.crm.contacts.batch_api.read({"inputs": [{"id": "151"}, {"id": "152"}], "properties": ["email"]})
    assert [r.id for r in read.results] == ["151"] and read.errors[0].context["ids"] == ["152"]
    assert hs_sandbox.state()["merged"] == {"152": "151"}
    # archive through the official client too: gone from search and list, present in the archived list
    client.crm.contacts.basic_api.archive("153")
    assert "153" in {r.id for r in client.crm.contacts.basic_api.get_page(limit=100, archived=True).results}


def test_date_header_is_hubspots_clock_and_company_search_shares_the_search_limit(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.config(clock_offset_s=-3600, rate_limit_per_10s=0, search_per_s=2)
    with httpx.Client(base_url=hs_sandbox.base_url, headers=AUTH) as http:
        first = http.post("/crm/v3/objects/contacts/search", json={})
        second = http.post("/crm/v3/objects/companies/search", json={})
        third = http.post("/crm/v3/objects/companies/search", json={})
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert third.json()["policyName"] == "SECONDLY"
    assert len(first.headers.get_list("date")) == 1
    offset = parsedate_to_datetime(first.headers["date"]).timestamp() - time.time()
    assert -3700 < offset < -3500
