"""The REAL hubspot-api-client (v12, client-side validation on) parses every sandbox endpoint."""

from __future__ import annotations

import json

import pytest
from hubspot.crm.associations.v4.models import (
    BatchResponsePublicAssociationMultiWithLabel,
    BatchResponsePublicAssociationMultiWithLabelWithErrors,
)
from hubspot.crm.companies.models import BatchResponseSimplePublicObject, BatchResponseSimplePublicObjectWithErrors
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest
from hubspot.crm.contacts.exceptions import UnauthorizedException

from tests.hubspot.conftest import HSSandbox


def _two_contacts(sb: HSSandbox) -> tuple[list[str], list[str]]:
    companies = sb.admin(
        "POST",
        "companies",
        {"inputs": [{"properties": {"name": f"Co {i}", "domain": f"co{i}.com"}} for i in range(3)]},
    )["ids"]
    contacts = sb.admin(
        "POST",
        "contacts",
        {
            "inputs": [
                # primary is the second company; the contact's own `company` disagrees (seed bug #5)
                {
                    "properties": {"email": "a@x.io", "company": "Typed"},
                    "companies": companies,
                    "primary": companies[1],
                },
                {"properties": {"email": "b@x.io"}},
            ]
        },
    )["ids"]
    return contacts, companies


def test_get_page_parses_associations_paging_and_last_page(hs_sandbox: HSSandbox) -> None:
    contacts, companies = _two_contacts(hs_sandbox)
    api = hs_sandbox.client().crm.contacts.basic_api
    first = api.get_page(limit=1, properties=["email", "company"], associations=["companies"])
    assert [r.id for r in first.results] == [contacts[0]]
    obj = first.results[0]
    assert obj.properties["email"] == "a@x.io"
    assert set(obj.properties) >= {"email", "company", "hs_object_id", "createdate", "lastmodifieddate"}
    assert obj.created_at is not None and obj.updated_at is not None and obj.archived is False
    assoc = [(a.id, a.type) for a in obj.associations["companies"].results]
    assert (companies[1], "contact_to_company") in assoc
    assert {(c, "contact_to_company_unlabeled") for c in companies} <= set(assoc)
    assert sum(1 for _, t in assoc if t == "contact_to_company") == 1
    assert first.paging.next.after

    last = api.get_page(limit=1, after=first.paging.next.after, properties=["email"], associations=["companies"])
    assert [r.id for r in last.results] == [contacts[1]]
    assert last.paging is None  # no `paging` key on the last page
    assert last.results[0].associations is None  # no `associations` key when there are none
    assert last.results[0].properties["email"] == "b@x.io"


def test_get_page_archived_lists_only_archived(hs_sandbox: HSSandbox) -> None:
    contacts, _ = _two_contacts(hs_sandbox)
    hs_sandbox.admin("POST", "archive", {"ids": [contacts[0]]})
    api = hs_sandbox.client().crm.contacts.basic_api
    assert [r.id for r in api.get_page(archived=True).results] == [contacts[0]]
    assert api.get_page(archived=True).results[0].archived_at is not None
    assert [r.id for r in api.get_page().results] == [contacts[1]]


def test_companies_batch_read_200_and_207(hs_sandbox: HSSandbox) -> None:
    _, companies = _two_contacts(hs_sandbox)
    api = hs_sandbox.client().crm.companies.batch_api
    ok = api.read({"inputs": [{"id": c} for c in companies], "properties": ["name", "domain"]})
    assert isinstance(ok, BatchResponseSimplePublicObject)
    assert {r.properties["name"] for r in ok.results} == {"Co 0", "Co 1", "Co 2"}

    hs_sandbox.admin("POST", "companies/delete", {"ids": [companies[2]]})
    partial = api.read({"inputs": [{"id": c} for c in companies], "properties": ["name"]})
    assert isinstance(partial, BatchResponseSimplePublicObjectWithErrors)
    assert partial.num_errors == 1
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context["ids"] == [companies[2]]
    assert {r.id for r in partial.results} == set(companies[:2])


def test_companies_batch_read_over_100_is_400(hs_sandbox: HSSandbox) -> None:
    api = hs_sandbox.client().crm.companies.batch_api
    from hubspot.crm.companies import ApiException as CompaniesApiException

    with pytest.raises(CompaniesApiException) as info:
        api.read({"inputs": [{"id": str(i)} for i in range(101)], "properties": ["name"]})
    assert info.value.status == 400
    assert json.loads(info.value.body)["category"] == "VALIDATION_ERROR"


def test_v4_association_batch_read(hs_sandbox: HSSandbox) -> None:
    contacts, companies = _two_contacts(hs_sandbox)
    api = hs_sandbox.client().crm.associations.v4.batch_api
    resp = api.get_page("contacts", "companies", {"inputs": [{"id": contacts[0]}]})
    assert isinstance(resp, BatchResponsePublicAssociationMultiWithLabel)
    (result,) = resp.results
    assert result._from.id == contacts[0]
    types = {t.to_object_id: {a.type_id for a in t.association_types} for t in result.to}
    assert types == {companies[0]: {279}, companies[1]: {1, 279}, companies[2]: {279}}
    # a contact without companies comes back in `errors` (207), not as a failure
    mixed = api.get_page("contacts", "companies", {"inputs": [{"id": c} for c in contacts]})
    assert isinstance(mixed, BatchResponsePublicAssociationMultiWithLabelWithErrors)
    assert [r._from.id for r in mixed.results] == [contacts[0]]


def test_search_filters_sorts_after_and_the_10k_cap(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(10_050, seed=2)
    api = hs_sandbox.client().crm.contacts.search_api
    req = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email", "lastmodifieddate"],
        limit=200,
    )
    page = api.do_search(req)
    assert page.total == 10_050 and len(page.results) == 200
    assert page.results[0].properties["lastmodifieddate"] <= page.results[-1].properties["lastmodifieddate"]
    assert page.paging.next.after == "200"
    assert all(getattr(r, "associations", None) is None for r in page.results)

    req.after = "9800"
    near_cap = api.do_search(req)
    assert len(near_cap.results) == 200
    assert near_cap.paging.next.after == "10000"  # offered... and refused:
    req.after = "10000"
    with pytest.raises(ApiException) as info:
        api.do_search(req)
    assert info.value.status == 400
    assert json.loads(info.value.body)["category"] == "VALIDATION_ERROR"

    one = api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "151"}]}],
            properties=["email"],
        )
    )
    assert one.total == 1 and one.results[0].id == "151" and one.paging is None


def test_batch_update_changes_properties_and_bumps_lastmodifieddate(hs_sandbox: HSSandbox) -> None:
    contacts, _ = _two_contacts(hs_sandbox)
    before = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    api = hs_sandbox.client().crm.contacts.batch_api
    resp = api.update({"inputs": [{"id": contacts[1], "properties": {"jobtitle": "CRO"}}]})
    assert resp.results[0].properties["jobtitle"] == "CRO"
    after = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    assert after[contacts[1]]["properties"]["jobtitle"] == "CRO"
    assert after[contacts[1]]["properties"]["lastmodifieddate"] > before[contacts[1]]["properties"]["lastmodifieddate"]
    assert after[contacts[0]] == before[contacts[0]]


def test_wrong_token_gets_hubspot_401(hs_sandbox: HSSandbox) -> None:
    api = hs_sandbox.client(token="pat-na1-wrong").crm.contacts.basic_api
    with pytest.raises(UnauthorizedException) as info:
        api.get_page()
    body = json.loads(info.value.body)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]
