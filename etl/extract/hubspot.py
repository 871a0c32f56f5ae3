"""HubSpot extractor: contacts with their PRIMARY company, as polars frames, at the request floor.

Two modes, both plain synchronous iterators over the official `hubspot-api-client` (v12):

- `full()`: list contacts 100 per page with `associations=companies`, batch-read the primary
  companies 100 at a time, each company at most once per run.
- `changed_since(since)`: the search API on `lastmodifieddate`, 200 per page, plus v4 association
  batch reads (search returns no associations). Search stops at 10,000 results per query, so the
  read restarts from the last timestamp seen; see `SearchCursor`.

Why the company comes from the association and never from `contact.properties.company`: seed bug #5,
that property is almost always empty (or typed by hand and wrong).

The decisions (next page, restart past the cap, which association is primary, when to batch-read)
are small pure functions below; `HubSpotExtractor` is the one loop that does I/O.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import polars as pl
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssocApiException
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.discovery.discovery_base import DiscoveryBase
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from etl.errors import CredentialsRejected, EtlError, TargetUnreachable
from etl.log import register_secret

CONTACT_PROPERTIES: tuple[str, ...] = (
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "jobtitle",
    "lifecyclestage",
    "hs_lead_status",
    "industry",
    "company",  # read for completeness only: seed bug #5, it is not where the company name lives
    "lastmodifieddate",
    "createdate",
    "hs_object_id",
)
COMPANY_PROPERTIES: tuple[str, ...] = ("name", "domain")

# the frame's String columns, in order, after "_row"
FRAME_COLUMNS: tuple[str, ...] = (
    "hs_object_id",
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "jobtitle",
    "lifecyclestage",
    "hs_lead_status",
    "industry",
    "lastmodifieddate",
    "company_name",
    "company_domain",
    "company_id",
    "company_status",
)
FRAME_SCHEMA: dict[str, Any] = {"_row": pl.Int64, **{c: pl.String for c in FRAME_COLUMNS}}

SEARCH_CAP = 10_000  # HubSpot answers 400 to any search page past the 10,000th result
SEARCH_LIMIT = 200  # the search endpoints' largest page
COMPANY_BATCH = 100  # companies batch/read inputs per request
ASSOC_BATCH = 1000  # v4 associations batch/read inputs per request
NOT_IN_MAX = 100  # values in one NOT_IN filter
SEEN_MAX = 5 * NOT_IN_MAX  # ids excluded at one timestamp (5 NOT_IN filters + EQ: HubSpot allows 6 per group)
MAX_HELD_ROWS = 5000  # rows held back waiting for a full company batch, before reading a partial one
PRIMARY_V3_TYPE = "contact_to_company"  # v3 `associations=companies`: the primary also shows unlabeled
PRIMARY_V4_TYPE_ID = 1  # v4: HUBSPOT_DEFINED typeId 1 is "Primary" contact -> company
RETRY_STATUSES = (429, 500, 502, 503, 504)

STATUS_OK = "ok"
STATUS_NONE = "none"
STATUS_DELETED = "deleted"


class HubSpotApiError(EtlError):
    """HubSpot refused a request for a reason retrying cannot fix (a 4xx other than auth)."""

    exit_code = 3


@dataclass(frozen=True)
class HubSpotBatch:
    frame: pl.DataFrame  # "_row" (Int64, 1-based across the run) + FRAME_COLUMNS as String
    archived: int  # archived contacts seen in this batch (incremental mode); not in `frame`
    max_modified: str | None  # highest lastmodifieddate in this batch (ISO), for the high-water mark
    archived_ids: tuple[str, ...] = ()  # which ones, should the caller want to act on them


# --- pure decisions -----------------------------------------------------------------------------


def iso_to_ms(value: str) -> int:
    """HubSpot datetime (ISO-8601, 'Z') -> epoch milliseconds."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


def datetime_to_ms(value: datetime) -> int:
    """A naive datetime is taken as UTC (HubSpot stores UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def next_after(paging: Any) -> str | None:
    """The cursor of the next page, or None on the last page (HubSpot then omits `paging`)."""
    nxt = paging.get("next") if isinstance(paging, Mapping) else None
    after = nxt.get("after") if isinstance(nxt, Mapping) else None
    return str(after) if after not in (None, "") else None


def primary_from_v3(associations: Iterable[tuple[str, str]]) -> str | None:
    """From `associations.companies.results` as (id, type): the id typed `contact_to_company`.

    The primary company shows twice (labelled and `_unlabeled`); other companies only unlabeled.
    Without a primary there is no company for this contact: we never guess among the others.
    """
    for company_id, kind in associations:
        if kind == PRIMARY_V3_TYPE:
            return company_id
    return None


def primary_from_v4(to: Iterable[tuple[str, Iterable[int]]]) -> str | None:
    """From a v4 association read as (toObjectId, [typeId, ...]): the one with typeId 1 (Primary)."""
    for company_id, type_ids in to:
        if PRIMARY_V4_TYPE_ID in set(type_ids):
            return company_id
    return None


def take_chunks(pending: Sequence[str], size: int, *, force: bool) -> tuple[list[list[str]], list[str]]:
    """Split pending ids into full chunks to read now and the rest to keep; `force` reads the rest too."""
    cut = len(pending) if force else len(pending) - len(pending) % size
    chunks = [list(pending[i : min(i + size, cut)]) for i in range(0, cut, size)]
    return chunks, list(pending[cut:])


_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int) -> list[list[_T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class SearchCursor:
    """Where an incremental search read stands. Pure state; `advance` gives the next one.

    Search pages by offset (`after`) and stops at 10,000 results per query; worse, HubSpot sorts by
    one property and promises no order among equal values, so offset paging through a group of
    contacts sharing one `lastmodifieddate` can miss some and double others. So we never page by
    offset: every request restarts from the last timestamp read, with hs_object_id as tie-breaker —

    - main mode: `lastmodifieddate > T  OR  (lastmodifieddate == T AND hs_object_id NOT_IN seen)`,
      sorted by lastmodifieddate ascending (first request: `>= since`). Each page holds every unread
      contact older than its last timestamp, so nothing is missed, and `seen` (the ids read at T)
      keeps anything from being read twice;
    - ties mode, when more than `SEEN_MAX` contacts share T: `lastmodifieddate == T AND
      hs_object_id > last id`, sorted by hs_object_id (unique, so exact), skipping `seen`; then main
      mode again from `> T`.

    One request per page either way, the 10,000 cap is never reached, and the high-water mark
    only moves forward.
    """

    since_ms: int
    inclusive: bool = True
    seen_ms: int | None = None  # the last timestamp read (T)
    seen_ids: frozenset[int] = frozenset()  # the ids read at T
    tie_after_id: int | None = None  # set: ties mode, keyset on hs_object_id within T

    @property
    def in_ties(self) -> bool:
        return self.tie_after_id is not None

    def body(self, limit: int, properties: Sequence[str]) -> dict[str, Any]:
        """The search request for this position (never an `after`: see the class docstring)."""
        sort = "lastmodifieddate"
        groups: list[list[dict[str, Any]]]
        if self.tie_after_id is not None:
            groups = [
                [
                    {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(self.seen_ms)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(self.tie_after_id)},
                ]
            ]
            sort = "hs_object_id"
        elif self.seen_ms is None:
            op = "GTE" if self.inclusive else "GT"
            groups = [[{"propertyName": "lastmodifieddate", "operator": op, "value": str(self.since_ms)}]]
        else:
            groups = [
                [{"propertyName": "lastmodifieddate", "operator": "GT", "value": str(self.seen_ms)}],
                [
                    {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(self.seen_ms)},
                    *(
                        {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": chunk}
                        for chunk in _chunks([str(i) for i in sorted(self.seen_ids)], NOT_IN_MAX)
                    ),
                ],
            ]
        return {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": limit,
        }

    def is_fresh(self, contact_id: int, modified_ms: int) -> bool:
        """False for a contact already read (at T, in an earlier page)."""
        return not (modified_ms == self.seen_ms and contact_id in self.seen_ids)

    def advance(
        self, page: Sequence[tuple[int, int]], has_more: bool, *, seen_max: int = SEEN_MAX
    ) -> SearchCursor | None:
        """Given this page's (id, lastmodified ms) in order and whether more match: the next cursor or None."""
        if self.tie_after_id is not None:
            if not has_more or not page:  # the tie group is drained: on past it
                return None if self.seen_ms is None else SearchCursor(since_ms=self.seen_ms, inclusive=False)
            return replace(self, tie_after_id=max(cid for cid, _ in page))
        if not has_more or not page:
            return None
        seen_ms, seen = self.seen_ms, set(self.seen_ids)
        for cid, ms in page:
            if ms != seen_ms:
                seen_ms, seen = ms, set()
            seen.add(cid)
        if len(seen) > seen_max:
            return replace(self, seen_ms=seen_ms, seen_ids=frozenset(seen), tie_after_id=0)
        return replace(self, seen_ms=seen_ms, seen_ids=frozenset(seen))


# --- rows and frames ----------------------------------------------------------------------------


_UNRESOLVED = object()  # the primary company is not known yet (incremental: association not read yet)


@dataclass
class _Row:
    values: dict[str, str | None]
    primary: object = _UNRESOLVED  # str company id | None (no primary) | _UNRESOLVED


@dataclass
class _Holder:
    """Rows waiting for their associations and companies, so batch reads go out full."""

    rows: deque[_Row] = field(default_factory=deque)
    pending_assoc: list[str] = field(default_factory=list)
    pending_companies: list[str] = field(default_factory=list)
    queued_companies: set[str] = field(default_factory=set)
    archived_ids: list[str] = field(default_factory=list)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def build_frame(
    rows: Sequence[_Row], companies: Mapping[str, tuple[str | None, str | None] | None], first_row: int
) -> pl.DataFrame:
    """Rows + the company cache -> the batch frame. Company fields only from the primary company."""
    cols: dict[str, list[Any]] = {c: [] for c in FRAME_SCHEMA}
    for i, row in enumerate(rows):
        cols["_row"].append(first_row + i)
        for name in FRAME_COLUMNS[:11]:
            cols[name].append(row.values.get(name))
        primary = row.primary
        if primary is None or primary is _UNRESOLVED:
            name_, domain, cid, status = None, None, None, STATUS_NONE
        else:
            cid = str(primary)
            found = companies.get(cid)
            if found is None:  # read and not found: deleted (a 207 from batch/read)
                name_, domain, status = None, None, STATUS_DELETED
            else:
                name_, domain = found
                status = STATUS_OK
        cols["company_name"].append(name_)
        cols["company_domain"].append(domain)
        cols["company_id"].append(cid)
        cols["company_status"].append(status)
    return pl.DataFrame(cols, schema=FRAME_SCHEMA)


def _max_iso(values: Iterable[str | None]) -> str | None:
    best: tuple[int, str] | None = None
    for v in values:
        if v:
            ms = iso_to_ms(v)
            if best is None or ms > best[0]:
                best = (ms, v)
    return None if best is None else best[1]


# --- the loop -----------------------------------------------------------------------------------


class _CountingRetry(Retry):
    """urllib3 Retry that counts each retry into the extractor's stats (Retry copies itself per try)."""

    counter: dict[str, int] | None = None

    def new(self, **kw: Any) -> Self:
        out = super().new(**kw)
        out.counter = self.counter
        return out

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if self.counter is not None:
            self.counter["retries"] = self.counter.get("retries", 0) + 1
        return super().increment(method, url, response, error, _pool, _stacktrace)


def make_retry(total: int, backoff_factor: float, counter: dict[str, int] | None = None) -> Retry:
    """429 and 5xx, POSTs included (search and batch reads are reads), honouring Retry-After."""
    retry = _CountingRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff_factor,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}),
        respect_retry_after_header=True,
        raise_on_status=True,
    )
    retry.counter = counter
    return retry


def _json_body(response: Any, response_type: Any) -> Any:
    return json.loads(response.data)


def json_api_factory(api_client_package: Any, api_name: str, config: dict[str, Any]) -> Any:
    """The client's own api factory, answering plain JSON instead of its models.

    Why: the models parse `createdAt`/`updatedAt` with dateutil, twice per object — half the run
    time of a 25k-contact read. URLs, auth, retries and error classes stay the client's.
    (tests/hubspot/test_client_contract.py proves the models parse every sandbox answer.)
    """
    api = DiscoveryBase._default_api_factory(api_client_package, api_name, config)
    api.api_client.deserialize = _json_body
    return api


class SearchPacer:
    """At most `per_second` searches in any 1-second window (HubSpot's own search limit), so that
    the read does not spend its retries on 429s. Clock and sleep are injectable."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.1,
    ) -> None:
        self.per_second = per_second
        self.clock = clock
        self.sleep = sleep
        self.margin = margin
        self.sent: deque[float] = deque()

    def wait(self) -> None:
        if self.per_second <= 0:
            return
        cap = max(1, int(self.per_second))
        now = self.clock()
        while self.sent and self.sent[0] <= now - 1.0 - self.margin:
            self.sent.popleft()
        if len(self.sent) >= cap:
            self.sleep(self.sent[0] + 1.0 + self.margin - now)
            self.sent.popleft()
        self.sent.append(self.clock())


class HubSpotExtractor:
    """Contacts + primary companies from HubSpot, as `HubSpotBatch`es. See the module docstring."""

    def __init__(
        self,
        access_token: str,
        *,
        host: str = "https://api.hubapi.com",
        page_size: int = 100,
        retry_total: int = 8,
        backoff_factor: float = 0.5,
        search_per_second: float = 4.0,
        max_held_rows: int = MAX_HELD_ROWS,
    ) -> None:
        register_secret(access_token)  # never in a log line
        self.page_size = min(max(1, page_size), 100)
        self.max_held_rows = max_held_rows
        self.stats: dict[str, int] = {
            "contacts_page": 0,
            "search": 0,
            "companies_batch": 0,
            "assoc_batch": 0,
            "archived_page": 0,
            "retries": 0,
        }
        client = HubSpot(
            access_token=access_token,
            host=host.rstrip("/"),
            retry=make_retry(retry_total, backoff_factor, self.stats),
            api_factory=json_api_factory,
        )
        # Each attribute access on the client builds a new ApiClient (and connection pool): take them once.
        self._contacts = client.crm.contacts.basic_api
        self._search = client.crm.contacts.search_api
        self._companies = client.crm.companies.batch_api
        self._assoc = client.crm.associations.v4.batch_api
        self._pacer = SearchPacer(search_per_second)
        self._company_cache: dict[str, tuple[str | None, str | None] | None] = {}
        self._rows_out = 0

    # --- the two modes ------------------------------------------------------------------------

    def full(self) -> Iterator[HubSpotBatch]:
        """Every active contact, id order; company from the primary association."""
        self._start()
        holder = _Holder()
        after: str | None = None
        while True:
            page = self._call(
                "contacts_page",
                self._contacts.get_page,
                limit=self.page_size,
                after=after,
                properties=list(CONTACT_PROPERTIES),
                associations=["companies"],
                archived=False,
            )
            for obj in page.get("results") or []:
                assoc = (obj.get("associations") or {}).get("companies") or {}
                pairs = [(str(a["id"]), str(a["type"])) for a in assoc.get("results") or []]
                holder.rows.append(_Row(self._values(obj), primary_from_v3(pairs)))
                self._queue_company(holder, holder.rows[-1].primary)
            after = next_after(page.get("paging"))
            yield from self._drain(holder, final=after is None)
            if after is None:
                return

    def changed_since(self, since: datetime, *, inclusive: bool = True) -> Iterator[HubSpotBatch]:
        """Contacts modified at or after `since` (after, with inclusive=False), oldest change first,
        then a last batch counting the contacts archived since then."""
        self._start()
        since_ms = datetime_to_ms(since)
        holder = _Holder()
        cursor: SearchCursor | None = SearchCursor(since_ms=since_ms, inclusive=inclusive)
        while cursor is not None:
            self._pacer.wait()
            page = self._call("search", self._search.do_search, cursor.body(SEARCH_LIMIT, CONTACT_PROPERTIES))
            seen: list[tuple[int, int]] = []
            for obj in page.get("results") or []:
                values = self._values(obj)
                cid, ms = int(str(obj["id"])), iso_to_ms(str(values["lastmodifieddate"]))
                seen.append((cid, ms))
                if cursor.is_fresh(cid, ms):
                    holder.rows.append(_Row(values))
                    holder.pending_assoc.append(str(obj["id"]))
            cursor = cursor.advance(seen, next_after(page.get("paging")) is not None)
            yield from self._drain(holder, final=False)
        holder.archived_ids.extend(self._archived_since(since_ms, inclusive))
        yield from self._drain(holder, final=True)

    # --- I/O helpers --------------------------------------------------------------------------

    def _start(self) -> None:
        self._company_cache.clear()  # "each company read once per run"
        self._rows_out = 0

    def _call(self, kind: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One API call: counted, its JSON body back, its failure turned into an error named by what to do."""
        self.stats[kind] += 1
        try:
            body = fn(*args, **kwargs)
            if not isinstance(body, dict):
                raise HubSpotApiError(f"HubSpot answered {kind} with an unexpected body.")
            return body
        except (ContactsApiException, CompaniesApiException, AssocApiException) as exc:
            status = int(getattr(exc, "status", 0) or 0)
            if status in (401, 403):
                raise CredentialsRejected(
                    f"HubSpot rejected the access token ({status}); check the private app's token and its "
                    "crm.objects.contacts.read / crm.objects.companies.read scopes."
                ) from None
            if status in RETRY_STATUSES or status == 0:
                raise TargetUnreachable(f"HubSpot still answered {status} to {kind} after retries.") from None
            raise HubSpotApiError(f"HubSpot refused the {kind} request ({status}): {_message(exc)}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise TargetUnreachable(f"HubSpot unreachable after retries ({kind}): {type(exc).__name__}") from None

    @staticmethod
    def _values(obj: Any) -> dict[str, str | None]:
        props = obj.get("properties") or {}
        values = {name: _text(props.get(name)) for name in CONTACT_PROPERTIES}
        values["hs_object_id"] = values["hs_object_id"] or str(obj["id"])
        return values

    def _queue_company(self, holder: _Holder, primary: object) -> None:
        if isinstance(primary, str) and primary not in self._company_cache and primary not in holder.queued_companies:
            holder.queued_companies.add(primary)
            holder.pending_companies.append(primary)

    def _drain(self, holder: _Holder, *, final: bool) -> Iterator[HubSpotBatch]:
        """Read what is due (full batches; everything when final or holding too much), emit what is ready."""
        force = final or len(holder.rows) >= self.max_held_rows
        if holder.pending_assoc:
            chunks, holder.pending_assoc = take_chunks(holder.pending_assoc, ASSOC_BATCH, force=force)
            for chunk in chunks:
                primaries = self._read_associations(chunk)
                for row in holder.rows:
                    if row.primary is _UNRESOLVED and row.values["hs_object_id"] in primaries:
                        row.primary = primaries[str(row.values["hs_object_id"])]
                        self._queue_company(holder, row.primary)
        chunks, holder.pending_companies = take_chunks(holder.pending_companies, COMPANY_BATCH, force=force)
        for chunk in chunks:
            self._read_companies(chunk)
            holder.queued_companies.difference_update(chunk)
        ready: list[_Row] = []
        while holder.rows and self._resolved(holder.rows[0]):
            ready.append(holder.rows.popleft())
        archived = tuple(holder.archived_ids) if final else ()
        if ready or archived:
            frame = build_frame(ready, self._company_cache, self._rows_out + 1)
            self._rows_out += len(ready)
            yield HubSpotBatch(
                frame=frame,
                archived=len(archived),
                max_modified=_max_iso(r.values.get("lastmodifieddate") for r in ready),
                archived_ids=archived,
            )

    def _resolved(self, row: _Row) -> bool:
        if row.primary is _UNRESOLVED:
            return False
        return row.primary is None or row.primary in self._company_cache

    def _read_associations(self, contact_ids: list[str]) -> dict[str, str | None]:
        """contact id -> primary company id (None: associated with none, or with no primary)."""
        out: dict[str, str | None] = {c: None for c in contact_ids}
        resp = self._call(
            "assoc_batch", self._assoc.get_page, "contacts", "companies", {"inputs": [{"id": c} for c in contact_ids]}
        )
        for result in resp.get("results") or []:
            to = [
                (str(t["toObjectId"]), [int(a["typeId"]) for a in t.get("associationTypes") or []])
                for t in result.get("to") or []
            ]
            out[str(result["from"]["id"])] = primary_from_v4(to)
        return out  # ids in `errors` (NO_ASSOCIATIONS_FOUND) stay None: no company

    def _read_companies(self, company_ids: list[str]) -> None:
        """Fill the cache; an id missing from a 207 answer is a deleted company (None)."""
        resp = self._call(
            "companies_batch",
            self._companies.read,
            {"inputs": [{"id": c} for c in company_ids], "properties": list(COMPANY_PROPERTIES)},
        )
        for cid in company_ids:
            self._company_cache[cid] = None
        for co in resp.get("results") or []:
            props = co.get("properties") or {}
            self._company_cache[str(co["id"])] = (_text(props.get("name")), _text(props.get("domain")))

    def _archived_since(self, since_ms: int, inclusive: bool) -> list[str]:
        """Contacts archived since `since` (search never returns archived ones): the archived listing."""
        found: list[str] = []
        after: str | None = None
        while True:
            page = self._call(
                "archived_page",
                self._contacts.get_page,
                limit=100,
                after=after,
                properties=["hs_object_id"],
                archived=True,
            )
            for obj in page.get("results") or []:
                at = obj.get("archivedAt")
                ms = iso_to_ms(at) if isinstance(at, str) else None
                if ms is None or ms > since_ms or (inclusive and ms == since_ms):
                    found.append(str(obj["id"]))
            after = next_after(page.get("paging"))
            if after is None:
                return found


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            parsed = json.loads(text)
            if isinstance(parsed, dict) and parsed.get("message"):
                return f"{parsed.get('category', '')} {parsed['message']}".strip()
        except ValueError:
            pass
        return text[:300]
    return str(getattr(exc, "reason", "")) or type(exc).__name__
