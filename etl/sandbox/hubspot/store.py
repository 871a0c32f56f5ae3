"""The HubSpot sandbox's state: plain Python, methods named after the API operations (moto style).

Every public operation either returns the JSON body HubSpot would send, or raises `HubSpotError`
carrying HubSpot's error shape. No HTTP here: `app.py` is the thin layer on top.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl.sandbox.hubspot import data

SEARCH_CAP = 10_000  # HubSpot: "the search endpoints are limited to 10,000 total results for any query"
SEARCH_MAX_LIMIT = 200
PAGE_MAX_LIMIT = 100
COMPANY_BATCH_MAX = 100
CONTACT_BATCH_MAX = 100
ASSOC_BATCH_MAX = 1000
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS_TOTAL = 18
MAX_IN_VALUES = 100

# association type ids (HubSpot-defined): contact -> company, and company -> contact
PRIMARY_TYPE_ID = 1
UNLABELED_TYPE_ID = 279
COMPANY_PRIMARY_TYPE_ID = 2
COMPANY_UNLABELED_TYPE_ID = 280

DATETIME_PROPS = frozenset({"createdate", "lastmodifieddate", "hs_lastmodifieddate"})
NUMERIC_PROPS = frozenset({"hs_object_id"})
CONTACT_DEFAULT_PROPS = ("firstname", "lastname", "email")
COMPANY_DEFAULT_PROPS = ("name", "domain")


class HubSpotError(Exception):
    """An error answer, in HubSpot's body shape."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


def iso_ms(ms: int) -> str:
    """HubSpot's datetime rendering: ISO-8601, UTC, millisecond precision."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def parse_ms(value: str) -> int:
    """A datetime filter value: epoch milliseconds (HubSpot's recommendation) or ISO-8601."""
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid datetime value '{value}'.") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


@dataclass
class Contact:
    id: int
    props: dict[str, str | None]
    created_ms: int
    modified_ms: int
    companies: list[int] = field(default_factory=list)  # all associated company ids, in association order
    primary: int | None = None  # the primary company (also in `companies`)
    archived_ms: int | None = None

    @property
    def archived(self) -> bool:
        return self.archived_ms is not None


@dataclass
class Company:
    id: int
    props: dict[str, str | None]
    created_ms: int
    modified_ms: int
    deleted: bool = False


class HubSpotStore:
    """Contacts and companies with their associations, and the operations HubSpot offers on them."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.reset()

    # --- housekeeping --------------------------------------------------------------------------

    def reset(self) -> None:
        self.contacts: dict[int, Contact] = {}
        self.contact_ids: list[int] = []  # ascending: ids are handed out in order, so appends keep it sorted
        self.companies: dict[int, Company] = {}
        self.next_contact_id = 151
        self.next_company_id = 7_100_000_001
        self._last_ms = 0
        self.version = 0
        self._by_modified: list[tuple[int, int]] = []
        self._index_version = -1
        self._by_company: dict[int, list[int]] = {}
        self._by_company_version = -1
        self.merged: dict[int, int] = {}  # merged-away contact id -> the survivor
        # Index lag: per record, (when the write becomes searchable, the record as search saw it
        # before that write), oldest first. Search shows a record as it was before its first write
        # not yet searchable. The lag is taken per write, so tests can mix lagged and prompt writes.
        self.index_lag_ms = 0
        self._unindexed: dict[tuple[str, int], list[tuple[int, Contact | Company | None]]] = {}

    def _changed(self) -> None:
        self.version += 1

    def _before_write(self, kind: str, key: int, record: Contact | Company | None) -> None:
        """Remember how search saw `record` before this write, while the index lag hides the write."""
        if self.index_lag_ms <= 0:
            return
        old = None if record is None else copy.deepcopy(record)
        visible_at = round(self._clock() * 1000) + self.index_lag_ms  # the lag at write time holds for it
        self._unindexed.setdefault((kind, key), []).append((visible_at, old))

    def _prune_unindexed(self) -> None:
        now = round(self._clock() * 1000)
        for key in list(self._unindexed):
            pending = [entry for entry in self._unindexed[key] if entry[0] > now]
            if pending:
                self._unindexed[key] = pending
            else:
                del self._unindexed[key]

    def _indexed(self, kind: str, key: int, current: Any) -> Any:
        """The record as the search index shows it now (None: not indexed yet)."""
        pending = self._unindexed.get((kind, key))
        return pending[0][1] if pending else current

    def tick(self) -> int:
        """Now, in ms, strictly after every timestamp handed out before (HubSpot's clock never repeats
        for one writer here, but many records written together share one value)."""
        self._last_ms = max(round(self._clock() * 1000), self._last_ms + 1)
        return self._last_ms

    # --- rendering -----------------------------------------------------------------------------

    def _contact_props(self, c: Contact, wanted: Sequence[str] | None) -> dict[str, str | None]:
        names = list(wanted) if wanted else list(CONTACT_DEFAULT_PROPS)
        out: dict[str, str | None] = {}
        for name in names:
            out[name] = self._contact_value(c, name)
        # HubSpot always adds these three
        out["createdate"] = iso_ms(c.created_ms)
        out["lastmodifieddate"] = iso_ms(c.modified_ms)
        out["hs_object_id"] = str(c.id)
        return out

    @staticmethod
    def _contact_value(c: Contact, name: str) -> str | None:
        if name == "hs_object_id":
            return str(c.id)
        if name == "createdate":
            return iso_ms(c.created_ms)
        if name == "lastmodifieddate":
            return iso_ms(c.modified_ms)
        return c.props.get(name)

    def _render_contact(self, c: Contact, wanted: Sequence[str] | None, *, with_assoc: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(c.id),
            "properties": self._contact_props(c, wanted),
            "createdAt": iso_ms(c.created_ms),
            "updatedAt": iso_ms(c.modified_ms),
            "archived": c.archived,
        }
        if c.archived_ms is not None:
            body["archivedAt"] = iso_ms(c.archived_ms)
        if with_assoc and c.companies:
            results: list[dict[str, str]] = []
            for cid in c.companies:
                if cid == c.primary:  # the primary shows twice: labelled and unlabeled
                    results.append({"id": str(cid), "type": "contact_to_company"})
                results.append({"id": str(cid), "type": "contact_to_company_unlabeled"})
            body["associations"] = {"companies": {"results": results}}
        return body

    def _render_company(self, co: Company, wanted: Sequence[str] | None) -> dict[str, Any]:
        names = list(wanted) if wanted else list(COMPANY_DEFAULT_PROPS)
        props: dict[str, str | None] = {n: co.props.get(n) for n in names}
        props["createdate"] = iso_ms(co.created_ms)
        props["hs_lastmodifieddate"] = iso_ms(co.modified_ms)
        props["hs_object_id"] = str(co.id)
        return {
            "id": str(co.id),
            "properties": props,
            "createdAt": iso_ms(co.created_ms),
            "updatedAt": iso_ms(co.modified_ms),
            "archived": False,
        }

    def _batch_envelope(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int
    ) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(max(started, round(self._clock() * 1000))),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return 207, body
        return 200, body

    # --- API operations ------------------------------------------------------------------------

    def list_contacts(
        self,
        *,
        limit: int = 10,
        after: str | None = None,
        properties: Sequence[str] = (),
        associations: Sequence[str] = (),
        archived: bool = False,
        base_url: str = "",
    ) -> dict[str, Any]:
        """GET /crm/v3/objects/contacts: id-ordered pages; `after` is the next id to read."""
        if limit < 1 or limit > PAGE_MAX_LIMIT:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {PAGE_MAX_LIMIT}.")
        start = 0
        if after:
            if not after.isdigit():
                raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid 'after' value '{after}'.")
            start = bisect.bisect_left(self.contact_ids, int(after))
        with_assoc = any(a.strip().lower() in ("companies", "company", "0-2") for a in associations)
        page: list[dict[str, Any]] = []
        next_id: int | None = None
        for cid in self.contact_ids[start:]:
            c = self.contacts[cid]
            if c.archived != archived:
                continue
            if len(page) == limit:
                next_id = cid
                break
            page.append(self._render_contact(c, properties, with_assoc=with_assoc))
        body: dict[str, Any] = {"results": page}
        if next_id is not None:  # HubSpot omits `paging` on the last page
            token = str(next_id)
            body["paging"] = {"next": {"after": token, "link": f"{base_url}/crm/v3/objects/contacts?after={token}"}}
        return body

    def search_contacts(self, request: Mapping[str, Any], *, shuffle_ties: bool = False) -> dict[str, Any]:
        """POST /crm/v3/objects/contacts/search: offset paging, capped at 10,000 results, no associations.

        Records that tie on every requested sort come back in an order HubSpot does not promise;
        `shuffle_ties` makes that order change from one request to the next.
        """
        limit = int(request.get("limit") or 10)
        if limit < 1 or limit > SEARCH_MAX_LIMIT:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {SEARCH_MAX_LIMIT}.")
        after_raw = request.get("after") or "0"
        try:
            after = int(str(after_raw))
        except ValueError as exc:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid 'after' value '{after_raw}'.") from exc
        if after >= SEARCH_CAP:
            # what HubSpot answers when a client pages past the cap
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                "There was a problem with the request. Paging through search results is limited to 10,000 "
                "results; narrow the query (for example by a date range) instead of paging further.",
            )
        groups = request.get("filterGroups") or []
        matcher = _compile_filter_groups(groups)  # validates, and serves the unindexed path
        sort_keys = _compile_sorts(request.get("sorts") or [])
        salt = random.getrandbits(32) if shuffle_ties else 0
        ids, total = self._search_ids(groups, matcher, sort_keys, salt, min(after + limit, SEARCH_CAP) + 1)
        end = min(after + limit, SEARCH_CAP)
        props = request.get("properties") or []
        results = [
            self._render_contact(self._indexed("contact", i, self.contacts[i]), props, with_assoc=False)
            for i in ids[after:end]
        ]
        body: dict[str, Any] = {"total": total, "results": results}
        if end < total:  # HubSpot offers "after": "10000" too — and then refuses it
            body["paging"] = {"next": {"after": str(end)}}
        return body

    def _search_ids(
        self,
        groups: Sequence[Mapping[str, Any]],
        matcher: Callable[[Any], bool],
        sort_keys: Sequence[tuple[str, bool]],
        salt: int,
        need: int,
    ) -> tuple[list[int], int]:
        """(at least the first `need` matching ids in sort order, how many match).

        When every filter group bounds lastmodifieddate (what incremental readers send) the matches
        come from a time index and, sorted by lastmodifieddate ascending, only the first `need` are
        ordered — so 25k-contact incremental reads stay cheap.
        """
        self._prune_unindexed()
        plans = None if self._unindexed else _time_plans(groups)
        if plans is None:
            views = (self._indexed("contact", c.id, c) for c in self.contacts.values())
            matched = [c for c in views if c is not None and not c.archived and matcher(c)]
            matched.sort(key=lambda c: _sort_tuple(c, sort_keys, salt))
            return [c.id for c in matched], len(matched)
        if self._index_version != self.version:
            self._by_modified = sorted((c.modified_ms, c.id) for c in self.contacts.values() if not c.archived)
            self._index_version = self.version
        index = self._by_modified
        hits: set[int] = set()
        for lo, hi, rest in plans:
            span = index[bisect.bisect_left(index, (lo, -1)) : bisect.bisect_right(index, (hi, 2**63))]
            if rest:
                hits.update(cid for _, cid in span if all(f(self.contacts[cid]) for f in rest))
            else:
                hits.update(cid for _, cid in span)
        if list(sort_keys) == [("hs_object_id", False)]:  # unique key: no ties to order
            return heapq.nsmallest(need, hits), len(hits)
        if list(sort_keys) != [("lastmodifieddate", False)]:
            ordered = sorted((self.contacts[i] for i in hits), key=lambda c: _sort_tuple(c, sort_keys, salt))
            return [c.id for c in ordered], len(hits)
        out: list[int] = []
        start = bisect.bisect_left(index, (min(p[0] for p in plans), -1))
        group: list[int] = []
        group_ms: int | None = None
        for ms, cid in index[start:]:
            if ms != group_ms:
                out.extend(sorted(group, key=lambda i: _scramble(i, salt)))
                group, group_ms = [], ms
                if len(out) >= need:
                    break
            if cid in hits:
                group.append(cid)
        else:
            out.extend(sorted(group, key=lambda i: _scramble(i, salt)))
        return out, len(hits)

    def read_companies(self, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /crm/v3/objects/companies/batch/read: 200, or 207 naming the ids not found."""

        def found(i: int) -> Company | None:
            co = self.companies.get(i)
            return None if co is None or co.deleted else co

        return self._batch_read(request, "COMPANY", found, self._render_company)

    def _batch_read(
        self,
        request: Mapping[str, Any],
        kind: str,
        found: Callable[[int], Any],
        render: Callable[[Any, Sequence[str]], dict[str, Any]],
    ) -> tuple[int, dict[str, Any]]:
        """A v3 batch read: at most 100 inputs, each id once, 207 naming those not found."""
        started = round(self._clock() * 1000)
        inputs = request.get("inputs") or []
        if len(inputs) > COMPANY_BATCH_MAX:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {COMPANY_BATCH_MAX}."
            )
        props = request.get("properties") or []
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for raw in dict.fromkeys(str(item.get("id", "")) for item in inputs):
            record = found(int(raw)) if raw.isdigit() else None
            if record is None:
                missing.append(raw)
            else:
                results.append(render(record, props))
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {kind} objects, they may be deleted or not exist. "
                    f"Check that ids are valid. Ids: {', '.join(missing)}",
                    "context": {"ids": missing},
                    "links": {},
                    "errors": [],
                }
            )
        return self._batch_envelope(results, errors, started)

    def read_associations(self, from_type: str, to_type: str, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /crm/v4/associations/{contacts,companies}/{companies,contacts}/batch/read: labelled
        associations per object (contact -> company: Primary is typeId 1; company -> contact: 2)."""
        pair = (_object_type(from_type), _object_type(to_type))
        if pair not in (("contacts", "companies"), ("companies", "contacts")):
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unsupported association {from_type} -> {to_type}.")
        started = round(self._clock() * 1000)
        inputs = request.get("inputs") or []
        if len(inputs) > ASSOC_BATCH_MAX:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {ASSOC_BATCH_MAX}."
            )
        raws = [str(item.get("id", "")) for item in inputs]
        if pair == ("companies", "contacts"):
            links, types = self._company_contacts(raws), (COMPANY_PRIMARY_TYPE_ID, COMPANY_UNLABELED_TYPE_ID)
        else:
            links, types = self._contact_companies(raws), (PRIMARY_TYPE_ID, UNLABELED_TYPE_ID)
        results: list[dict[str, Any]] = []
        without: list[str] = []
        for raw in raws:
            if not links.get(raw):
                without.append(raw)
                continue
            to = []
            for to_id, primary in links[raw]:
                labels: list[dict[str, Any]] = []
                if primary:  # the primary shows twice: labelled and unlabeled
                    labels.append({"category": "HUBSPOT_DEFINED", "typeId": types[0], "label": "Primary"})
                labels.append({"category": "HUBSPOT_DEFINED", "typeId": types[1], "label": None})
                to.append({"toObjectId": to_id, "associationTypes": labels})
            results.append({"from": {"id": raw}, "to": to})
        errors = []
        if without:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {pair[1]} are associated with {pair[0]} {', '.join(without)}.",
                    "context": {"fromObjectId": without},
                    "links": {},
                    "errors": [],
                }
            )
        return self._batch_envelope(results, errors, started)

    def _contact_companies(self, raws: Sequence[str]) -> dict[str, list[tuple[int, bool]]]:
        """contact id -> [(company id, is its primary)] for live contacts."""
        out: dict[str, list[tuple[int, bool]]] = {}
        for raw in raws:
            c = self.contacts.get(int(raw)) if raw.isdigit() else None
            if c is not None and not c.archived:
                out[raw] = [(co, co == c.primary) for co in c.companies]
        return out

    def _company_contacts(self, raws: Sequence[str]) -> dict[str, list[tuple[int, bool]]]:
        """company id -> [(live contact id, the company is its primary)], from a reverse index."""
        if self._by_company_version != self.version:
            by_company: dict[int, list[int]] = {}
            for cid in self.contact_ids:
                c = self.contacts[cid]
                if not c.archived:
                    for co in c.companies:
                        by_company.setdefault(co, []).append(cid)
            self._by_company, self._by_company_version = by_company, self.version
        out: dict[str, list[tuple[int, bool]]] = {}
        for raw in raws:
            company = self.companies.get(int(raw)) if raw.isdigit() else None
            if company is not None and not company.deleted:
                linked = self._by_company.get(company.id, [])
                out[raw] = [(cid, self.contacts[cid].primary == company.id) for cid in linked]
        return out

    def read_contacts(self, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /crm/v3/objects/contacts/batch/read: 200, or 207 naming the ids not found (archived
        and merged-away contacts included)."""

        def found(i: int) -> Contact | None:
            c = self.contacts.get(i)
            return None if c is None or c.archived else c

        return self._batch_read(request, "CONTACT", found, lambda c, props: self._render_contact(c, props,
                                                                                                 with_assoc=False))

    def search_companies(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """POST /crm/v3/objects/companies/search: as contacts search (offset paging, 10,000 cap),
        over companies as the index shows them."""
        limit = int(request.get("limit") or 10)
        if limit < 1 or limit > SEARCH_MAX_LIMIT:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {SEARCH_MAX_LIMIT}.")
        after_raw = request.get("after") or "0"
        try:
            after = int(str(after_raw))
        except ValueError as exc:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid 'after' value '{after_raw}'.") from exc
        if after >= SEARCH_CAP:
            raise HubSpotError(400, "VALIDATION_ERROR", "Paging through search results is limited to 10,000 results.")
        matcher = _compile_filter_groups(request.get("filterGroups") or [])
        sort_keys = _compile_sorts(request.get("sorts") or [])
        self._prune_unindexed()
        views = (self._indexed("company", co.id, co) for co in self.companies.values())
        matched = sorted(
            (co for co in views if co is not None and not co.deleted and matcher(co)),
            key=lambda co: _sort_tuple(co, sort_keys),
        )
        end = min(after + limit, SEARCH_CAP)
        props = request.get("properties") or []
        body: dict[str, Any] = {
            "total": len(matched),
            "results": [self._render_company(co, props) for co in matched[after:end]],
        }
        if end < len(matched):
            body["paging"] = {"next": {"after": str(end)}}
        return body

    def update_companies(self, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /crm/v3/objects/companies/batch/update: a rename bumps the COMPANY's
        hs_lastmodifieddate only; its contacts' lastmodifieddate stays as it was."""
        started = round(self._clock() * 1000)
        inputs = request.get("inputs") or []
        if len(inputs) > COMPANY_BATCH_MAX:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {COMPANY_BATCH_MAX}."
            )
        now = self.tick()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            raw = str(item.get("id", ""))
            co = self.companies.get(int(raw)) if raw.isdigit() else None
            if co is None or co.deleted:
                missing.append(raw)
                continue
            self._before_write("company", co.id, co)
            props = {str(k): (None if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            co.props.update(props)
            co.modified_ms = now
            results.append(self._render_company(co, sorted(props)))
        self._changed()
        return self._batch_envelope(results, _not_found_errors("COMPANY", missing), started)

    def set_primary(self, contact_id: str | int, company_id: str | int) -> None:
        """PUT /crm/v4/objects/contacts/{id}/associations/companies/{to} with the Primary label:
        the contact's primary company changes and NEITHER record's modification date moves."""
        c = self._live_contact(contact_id)
        co = self.companies.get(int(company_id))
        if co is None or co.deleted:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Company {company_id} not found.")
        if co.id not in c.companies:
            c.companies.append(co.id)
        c.primary = co.id
        self._changed()

    def merge(self, primary_id: str | int, merged_id: str | int) -> dict[str, Any]:
        """POST /crm/v3/objects/contacts/merge: the merged-away contact vanishes from every read; the
        survivor lists it in hs_merged_object_ids and takes its e-mails into hs_additional_emails."""
        survivor = self._live_contact(primary_id)
        gone = self._live_contact(merged_id)
        if survivor.id == gone.id:
            raise HubSpotError(400, "VALIDATION_ERROR", "Cannot merge a contact with itself.")
        now = self.tick()
        self._before_write("contact", survivor.id, survivor)

        def listed(c: Contact, prop: str) -> list[str]:
            return [v for v in (c.props.get(prop) or "").split(";") if v]

        merged_ids = [*listed(survivor, "hs_merged_object_ids"), str(gone.id), *listed(gone, "hs_merged_object_ids")]
        gone_email = gone.props.get("email")
        emails = [*listed(survivor, "hs_additional_emails"), *([gone_email] if gone_email else []),
                  *listed(gone, "hs_additional_emails")]
        # HubSpot keeps the survivor's values, and fills the ones it lacks from the merged-away contact
        for name, value in gone.props.items():
            if name not in _MERGE_OWN and value not in (None, "") and not (survivor.props.get(name) or "").strip():
                survivor.props[name] = value
        survivor.props["hs_merged_object_ids"] = ";".join(dict.fromkeys(merged_ids))
        survivor.props["hs_additional_emails"] = ";".join(dict.fromkeys(e.strip() for e in emails if e.strip())) or None
        for co in gone.companies:
            if co not in survivor.companies:
                survivor.companies.append(co)
        survivor.modified_ms = now
        del self.contacts[gone.id]
        self.contact_ids.pop(bisect.bisect_left(self.contact_ids, gone.id))
        self._unindexed.pop(("contact", gone.id), None)
        self.merged[gone.id] = survivor.id
        for old, into in self.merged.items():
            if into == gone.id:
                self.merged[old] = survivor.id
        self._changed()
        return self._render_contact(survivor, ["email", "hs_merged_object_ids", "hs_additional_emails"],
                                    with_assoc=False)

    def archive_one(self, contact_id: str | int) -> None:
        """DELETE /crm/v3/objects/contacts/{id}: 204; an unknown or merged-away id is 404."""
        if not self.archive([contact_id]):
            c = self.contacts.get(int(contact_id)) if str(contact_id).isdigit() else None
            if c is None:
                raise HubSpotError(404, "OBJECT_NOT_FOUND", "Object not found. objectId are usually numeric.")

    def _live_contact(self, raw: str | int) -> Contact:
        c = self.contacts.get(int(raw)) if str(raw).isdigit() else None
        if c is None or c.archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Contact {raw} not found.")
        return c

    def update_contacts(self, request: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /crm/v3/objects/contacts/batch/update: set properties, bump lastmodifieddate."""
        started = round(self._clock() * 1000)
        inputs = request.get("inputs") or []
        if len(inputs) > CONTACT_BATCH_MAX:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {CONTACT_BATCH_MAX}."
            )
        now = self.tick()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            raw = str(item.get("id", ""))
            c = self.contacts.get(int(raw)) if raw.isdigit() else None
            if c is None or c.archived:
                missing.append(raw)
                continue
            props = {str(k): (None if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            self._before_write("contact", c.id, c)
            c.props.update({k: v for k, v in props.items() if k not in _READ_ONLY})
            c.modified_ms = now
            results.append(self._render_contact(c, sorted(props), with_assoc=False))
        self._changed()
        return self._batch_envelope(results, _not_found_errors("CONTACT", missing), started)

    # --- admin operations ----------------------------------------------------------------------

    def seed(
        self, *, contacts: int, companies: int | None = None, seed: int = 0, adversarial: bool = True
    ) -> dict[str, Any]:
        """Replace everything with generated data; return a summary of the quirks planted."""
        self.reset()
        rng = random.Random(seed)
        n_companies = companies if companies is not None else max(1, contacts // 4)
        now_ms = round(self._clock() * 1000)
        summary: dict[str, int] = {"contacts": contacts, "companies": n_companies}
        for co_spec in data.generate_companies(rng, n_companies, now_ms=now_ms, adversarial=adversarial):
            self._add_company(co_spec)
        company_ids = list(self.companies)
        for spec in data.generate_contacts(rng, contacts, company_ids, now_ms=now_ms, adversarial=adversarial):
            self._add_contact(spec)
        deleted = 0
        if adversarial and company_ids:
            # some companies are deleted after contacts were associated: batch reads answer 207
            for cid in rng.sample(company_ids, max(1, len(company_ids) // 25)):
                self.companies[cid].deleted = True
                deleted += 1
        self._last_ms = max(self._last_ms, max((c.modified_ms for c in self.contacts.values()), default=0))
        self._changed()
        summary.update(data.summarise(self.contacts.values(), self.companies))
        summary["deleted_companies"] = deleted
        return summary

    def _add_company(self, spec: data.CompanySpec) -> int:
        cid = self.next_company_id
        self.next_company_id += 1
        self.companies[cid] = Company(cid, dict(spec.props), spec.created_ms, spec.modified_ms)
        return cid

    def _add_contact(self, spec: data.ContactSpec) -> int:
        cid = self.next_contact_id
        self.next_contact_id += 1
        self.contacts[cid] = Contact(
            cid, dict(spec.props), spec.created_ms, spec.modified_ms, list(spec.companies), spec.primary
        )
        self.contact_ids.append(cid)
        return cid

    def create_contacts(self, inputs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Admin: create contacts `{"properties": {...}, "companies": [ids], "primary": id}`."""
        now = self.tick()
        ids: list[str] = []
        for item in inputs:
            companies = [int(x) for x in item.get("companies") or []]
            primary = item.get("primary")
            if primary is None and companies and item.get("primary", "unset") == "unset":
                primary = companies[0]
            props = {str(k): (None if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            spec = data.ContactSpec(props, now, now, companies, None if primary is None else int(primary))
            ids.append(str(self._add_contact(spec)))
            self._before_write("contact", int(ids[-1]), None)
        self._changed()
        return ids

    def create_companies(self, inputs: Iterable[Mapping[str, Any]]) -> list[str]:
        now = self.tick()
        ids = []
        for item in inputs:
            props = {str(k): (None if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            ids.append(str(self._add_company(data.CompanySpec(props, now, now))))
            self._before_write("company", int(ids[-1]), None)
        self._changed()
        return ids

    def delete_companies(self, ids: Iterable[str | int]) -> list[str]:
        done = []
        for raw in ids:
            co = self.companies.get(int(raw))
            if co is not None and not co.deleted:
                self._before_write("company", co.id, co)
                co.deleted = True
                done.append(str(co.id))
        self._changed()
        return done

    def touch(
        self,
        *,
        ids: Sequence[str | int] | None = None,
        n: int | None = None,
        seed: int = 0,
        group: int | None = None,
        change: bool = True,
    ) -> list[str]:
        """Admin: bump lastmodifieddate (and change jobtitle) of `ids`, or of `n` random active contacts.

        Touched contacts share timestamps in groups of `group` (random 1–250 when not given), like a
        workflow or an import that writes many records in the same millisecond.
        """
        rng = random.Random(seed)
        if ids is not None:
            chosen = [int(i) for i in ids if int(i) in self.contacts]
        else:
            active = [cid for cid in self.contact_ids if not self.contacts[cid].archived]
            chosen = sorted(rng.sample(active, min(n or 0, len(active))))
        # the writes land in a scrambled order: ties in time are not ties in id order
        order = list(chosen)
        rng.shuffle(order)
        left_in_group = 0
        ts = 0
        for cid in order:
            if left_in_group <= 0:
                ts = self.tick()
                left_in_group = group if group else rng.randint(1, 250)
            left_in_group -= 1
            c = self.contacts[cid]
            self._before_write("contact", c.id, c)
            c.modified_ms = ts
            if change:
                c.props["jobtitle"] = rng.choice(data.JOB_TITLES)
        self._changed()
        return [str(i) for i in chosen]

    def archive(self, ids: Iterable[str | int]) -> list[str]:
        now = self.tick()
        done = []
        for raw in ids:
            c = self.contacts.get(int(raw))
            if c is not None and not c.archived:
                self._before_write("contact", c.id, c)
                c.archived_ms = now
                done.append(str(c.id))
        self._changed()
        return done

    def state(self) -> dict[str, Any]:
        """Admin: the whole truth, for tests to derive the expected extract from."""
        return {
            "contacts": [
                {
                    "id": str(c.id),
                    "properties": {
                        **c.props,
                        "hs_object_id": str(c.id),
                        "createdate": iso_ms(c.created_ms),
                        "lastmodifieddate": iso_ms(c.modified_ms),
                    },
                    "archived": c.archived,
                    "archivedAt": None if c.archived_ms is None else iso_ms(c.archived_ms),
                    "companies": [str(x) for x in c.companies],
                    "primary": None if c.primary is None else str(c.primary),
                }
                for c in (self.contacts[i] for i in self.contact_ids)
            ],
            "companies": [
                {
                    "id": str(co.id),
                    "properties": {**co.props, "hs_lastmodifieddate": iso_ms(co.modified_ms)},
                    "deleted": co.deleted,
                }
                for co in self.companies.values()
            ],
            "deleted_companies": [str(co.id) for co in self.companies.values() if co.deleted],
            "merged": {str(k): str(v) for k, v in self.merged.items()},
        }


_READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
_MERGE_OWN = frozenset({"email", "hs_merged_object_ids", "hs_additional_emails"})


def _object_type(name: str) -> str:
    name = name.lower()
    return {"contact": "contacts", "0-1": "contacts", "company": "companies", "0-2": "companies"}.get(name, name)


# --- search: filters and sorts ---------------------------------------------------------------------

_OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
     "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)  # fmt: skip


def _typed(prop: str, value: Any) -> Any:
    if value is None:
        return None
    if prop in DATETIME_PROPS:
        return parse_ms(str(value))
    if prop in NUMERIC_PROPS:
        try:
            return int(str(value))
        except ValueError as exc:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid number '{value}' for {prop}.") from exc
    return str(value).lower()  # HubSpot string comparisons ignore case


def _value_of(c: Contact | Company, prop: str) -> Any:
    if prop == "hs_object_id":
        return c.id
    if prop in ("lastmodifieddate", "hs_lastmodifieddate"):
        return c.modified_ms
    if prop == "createdate":
        return c.created_ms
    raw = c.props.get(prop)
    return None if raw is None or raw == "" else raw.lower()


def _compile_filter(f: Mapping[str, Any]) -> Callable[[Any], bool]:
    prop = str(f.get("propertyName") or "")
    op = str(f.get("operator") or "EQ").upper()
    if not prop:
        raise HubSpotError(400, "VALIDATION_ERROR", "Filter is missing propertyName.")
    if op not in _OPERATORS:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unknown filter operator '{op}'.")
    if op == "HAS_PROPERTY":
        return lambda c: _value_of(c, prop) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda c: _value_of(c, prop) is None
    if op in ("IN", "NOT_IN"):
        raw_values = f.get("values") or []
        if len(raw_values) > MAX_IN_VALUES:
            raise HubSpotError(400, "VALIDATION_ERROR", f"{op} accepts at most {MAX_IN_VALUES} values.")
        values = {_typed(prop, v) for v in raw_values}
        if op == "IN":
            return lambda c: _value_of(c, prop) in values
        return lambda c: _value_of(c, prop) not in values
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value") or "").lower().strip("*")
        hit: Callable[[Any], bool] = lambda c: token in str(_value_of(c, prop) or "")  # noqa: E731
        return hit if op == "CONTAINS_TOKEN" else (lambda c: not hit(c))
    if f.get("value") is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Filter on {prop} with {op} needs a value.")
    v = _typed(prop, f.get("value"))
    if op == "BETWEEN":
        hv = _typed(prop, f.get("highValue"))
        return lambda c: (x := _value_of(c, prop)) is not None and v <= x <= hv
    cmp: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda x: x == v,
        "NEQ": lambda x: x != v,
        "LT": lambda x: x < v,
        "LTE": lambda x: x <= v,
        "GT": lambda x: x > v,
        "GTE": lambda x: x >= v,
    }
    test = cmp[op]
    if op == "NEQ":
        return lambda c: test(_value_of(c, prop))
    return lambda c: (x := _value_of(c, prop)) is not None and test(x)


_TIME_OPS = frozenset({"GT", "GTE", "EQ", "LT", "LTE", "BETWEEN"})


def _time_plans(groups: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, list[Callable[[Any], bool]]]] | None:
    """Per filter group: its lastmodifieddate bounds and its other filters; None if a group is unbounded."""
    if not groups:
        return None
    plans = []
    for g in groups:
        lo, hi, bounded = -(2**62), 2**62, False
        rest: list[Callable[[Any], bool]] = []
        for f in g.get("filters") or []:
            op = str(f.get("operator", "EQ")).upper()
            if f.get("propertyName") != "lastmodifieddate" or op not in _TIME_OPS or f.get("value") is None:
                rest.append(_compile_filter(f))
                continue
            v = parse_ms(str(f["value"]))
            bounded = True
            if op in ("GT", "GTE", "EQ", "BETWEEN"):
                lo = max(lo, v + 1 if op == "GT" else v)
            if op in ("LT", "LTE", "EQ"):
                hi = min(hi, v - 1 if op == "LT" else v)
            if op == "BETWEEN":
                hi = min(hi, parse_ms(str(f.get("highValue"))))
        if not bounded:
            return None
        plans.append((lo, hi, rest))
    return plans


def _compile_filter_groups(groups: Sequence[Mapping[str, Any]]) -> Callable[[Any], bool]:
    if len(groups) > MAX_FILTER_GROUPS:
        raise HubSpotError(400, "VALIDATION_ERROR", f"At most {MAX_FILTER_GROUPS} filterGroups are allowed.")
    compiled: list[list[Callable[[Any], bool]]] = []
    total = 0
    for g in groups:
        filters = g.get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise HubSpotError(400, "VALIDATION_ERROR", f"At most {MAX_FILTERS_PER_GROUP} filters per group.")
        total += len(filters)
        compiled.append([_compile_filter(f) for f in filters])
    if total > MAX_FILTERS_TOTAL:
        raise HubSpotError(400, "VALIDATION_ERROR", f"At most {MAX_FILTERS_TOTAL} filters in total.")
    if not compiled:
        return lambda c: True
    return lambda c: any(all(f(c) for f in group) for group in compiled)


def _compile_sorts(sorts: Sequence[Any]) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for s in sorts:
        if isinstance(s, str):
            desc = s.startswith("-")
            keys.append((s.lstrip("-"), desc))
        elif isinstance(s, Mapping):
            keys.append((str(s.get("propertyName")), str(s.get("direction", "ASCENDING")).upper() == "DESCENDING"))
        else:
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid sort.")
    return keys


def _scramble(i: int, salt: int = 0) -> int:
    # Ties beyond the requested sorts come back in no particular order (HubSpot promises none),
    # so an extractor that relies on ids being ordered within a timestamp is caught here.
    return ((i ^ salt) * 2654435761) % 4294967296


def _sort_tuple(c: Contact | Company, keys: Sequence[tuple[str, bool]], salt: int = 0) -> tuple[Any, ...]:
    out: list[Any] = []
    for prop, desc in keys:
        v = _value_of(c, prop)
        if v is None:
            out.append((1, 0))  # missing values sort last either way
        elif isinstance(v, int):
            out.append((0, -v if desc else v))
        else:
            out.append((0, _Desc(v) if desc else v))
    if not keys:
        return (c.id,)
    out.append(_scramble(c.id, salt))
    return tuple(out)


class _Desc:
    """Reverses string ordering inside a sort key."""

    __slots__ = ("v",)

    def __init__(self, v: str) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return self.v > other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def _not_found_errors(kind: str, missing: list[str]) -> list[dict[str, Any]]:
    """A batch update's `errors` as HubSpot words them for ids it could not find (none: empty)."""
    if not missing:
        return []
    return [{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not update some {kind} objects. Ids: {', '.join(missing)}",
        "context": {"ids": missing},
        "links": {},
        "errors": [],
    }]
