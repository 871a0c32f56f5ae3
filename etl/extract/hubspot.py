"""HubSpot extractor: contacts with their PRIMARY company, as polars frames, at the request floor.

Two modes, both plain synchronous iterators over the official `hubspot-api-client` (v12):

- `full()`: list contacts 100 per page with `associations=companies`, batch-read the primary
  companies 100 at a time, each company at most once per run.
- `changed_since(since)`: the search API on `lastmodifieddate`, 200 per page, plus v4 association
  batch reads (search returns no associations). Search stops at 10,000 results per query, so the
  read restarts from the last timestamp seen; see `SearchCursor`. Then the companies whose
  `hs_lastmodifieddate` moved (a rename moves no contact's date): their primary contacts through
  v4 company -> contact associations, 1,000 companies a request, read 100 a request.
- both: the archived listing (read in full: it cannot be filtered) when asked, and each survivor
  of a merge as `hs_merged_object_ids` shows it (merged-away contacts vanish from every read).

HubSpot's clock, not ours, dates a run: `server_time` is the `Date` header of its first answer.
Every call but search is paced from the X-HubSpot-RateLimit-Max / -Remaining / -Interval-Milliseconds
headers of the answers before it (`RollingBudget`: the whole rolling 10-s budget, no 429 when the token
is ours alone); search answers carry none of those headers and have their own per-second limit.
A 429 never ends a read: it waits (Retry-After) and tries again, and a search 429 with policy
`SECONDLY` teaches the search pacer the portal's real per-second limit (`SearchPacer.learn`).

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
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

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
from etl.load.classify import RETRY_STATUSES, SERVER_ERROR_STATUSES
from etl.load.ratelimit import RollingBudget, RollingHeaders, parse_retry_after, rolling_delay
from etl.log import register_secret
from etl.report import no_rejects
from etl.sources import SourceBatch

if TYPE_CHECKING:
    from etl.config import Settings
    from etl.hubspot_sync import HubSpotIncremental
    from etl.jobs import JobSpec
    from etl.mapping import Mapping as LeadMapping

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
    "hs_merged_object_ids",  # on a merge's survivor: the ids merged into it (";"-separated)
    "hs_additional_emails",  # ... and their e-mails, which is how their leads are found
)
COMPANY_PROPERTIES: tuple[str, ...] = ("name", "domain")
COMPANY_SEARCH_PROPERTIES: tuple[str, ...] = ("name", "domain", "hs_lastmodifieddate", "hs_object_id")

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
CONTACT_BATCH = 100  # contacts batch/read inputs per request
NOT_IN_MAX = 100  # values in one NOT_IN filter
SEEN_MAX = 5 * NOT_IN_MAX  # ids excluded at one timestamp (5 NOT_IN filters + EQ: HubSpot allows 6 per group)
MAX_HELD_ROWS = 5000  # rows held back waiting for a full company batch, before reading a partial one
PRIMARY_V3_TYPE = "contact_to_company"  # v3 `associations=companies`: the primary also shows unlabeled
PRIMARY_V4_TYPE_ID = 1  # v4: HUBSPOT_DEFINED typeId 1 is "Primary" contact -> company
COMPANY_PRIMARY_V4_TYPE_ID = 2  # ... and typeId 2 the same label seen from the company
SEARCH_KINDS = frozenset({"search", "company_search"})  # paced by SearchPacer, not by rate headers
THROTTLE_BUDGET_S = 900.0  # total wait for 429s in one read before it is called unreachable

STATUS_OK = "ok"
STATUS_NONE = "none"
STATUS_DELETED = "deleted"


class HubSpotApiError(EtlError):
    """HubSpot refused a request for a reason retrying cannot fix (a 4xx other than auth)."""

    exit_code = 3


@dataclass(frozen=True)
class ArchivedContact:
    id: str
    email: str | None
    archived_at: str | None  # ISO, HubSpot's clock


@dataclass(frozen=True)
class Merge:
    """A survivor read in this run that has contacts merged into it (ever: HubSpot keeps the list)."""

    survivor: str
    merged_ids: tuple[str, ...]
    emails: tuple[str, ...]  # hs_additional_emails: where the merged-away contacts' e-mails went


@dataclass(frozen=True)
class HubSpotBatch:
    frame: pl.DataFrame  # "_row" (Int64, 1-based across the run) + FRAME_COLUMNS as String
    archived: int  # archived contacts seen in this batch (incremental mode); not in `frame`
    max_modified: str | None  # highest lastmodifieddate in this batch (ISO), for the high-water mark
    archived_ids: tuple[str, ...] = ()  # which ones, should the caller want to act on them
    archived_contacts: tuple[ArchivedContact, ...] = ()  # the same, with e-mail and archivedAt
    merges: tuple[Merge, ...] = ()  # survivors in this batch's rows
    refreshed: int = 0  # rows read only because their primary company changed
    changed_companies: int = 0  # companies whose hs_lastmodifieddate moved (last batch)


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


def split_list(value: str | None) -> tuple[str, ...]:
    """HubSpot's multi-value text (`"12;34"`) as a tuple, blanks dropped."""
    return tuple(v.strip() for v in (value or "").split(";") if v.strip())


def archived_after(found: Iterable[ArchivedContact], since_ms: int, inclusive: bool) -> list[ArchivedContact]:
    """The archived listing can't be filtered: keep those archived after `since` (at it, if inclusive).
    A contact without archivedAt is kept: better reported twice than missed."""
    out = []
    for c in found:
        ms = iso_to_ms(c.archived_at) if c.archived_at else None
        if ms is None or ms > since_ms or (inclusive and ms == since_ms):
            out.append(c)
    return out


def primaries_of_companies(results: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """From a v4 companies -> contacts batch read: contact id -> the company that is its primary."""
    out: dict[str, str] = {}
    for result in results:
        company = str(result["from"]["id"])
        for t in result.get("to") or []:
            if any(int(a["typeId"]) == COMPANY_PRIMARY_V4_TYPE_ID for a in t.get("associationTypes") or []):
                out[str(t["toObjectId"])] = company
    return out


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
    prop: str = "lastmodifieddate"  # companies: hs_lastmodifieddate

    @property
    def in_ties(self) -> bool:
        return self.tie_after_id is not None

    def body(self, limit: int, properties: Sequence[str]) -> dict[str, Any]:
        """The search request for this position (never an `after`: see the class docstring)."""
        sort = self.prop
        groups: list[list[dict[str, Any]]]
        if self.tie_after_id is not None:
            groups = [
                [
                    {"propertyName": self.prop, "operator": "EQ", "value": str(self.seen_ms)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(self.tie_after_id)},
                ]
            ]
            sort = "hs_object_id"
        elif self.seen_ms is None:
            op = "GTE" if self.inclusive else "GT"
            groups = [[{"propertyName": self.prop, "operator": op, "value": str(self.since_ms)}]]
        else:
            groups = [
                [{"propertyName": self.prop, "operator": "GT", "value": str(self.seen_ms)}],
                [
                    {"propertyName": self.prop, "operator": "EQ", "value": str(self.seen_ms)},
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
                return None if self.seen_ms is None else SearchCursor(self.seen_ms, inclusive=False, prop=self.prop)
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
    refresh: bool = False  # read only because its primary company changed


@dataclass
class _Holder:
    """Rows waiting for their associations and companies, so batch reads go out full."""

    rows: deque[_Row] = field(default_factory=deque)
    pending_assoc: list[str] = field(default_factory=list)
    pending_companies: list[str] = field(default_factory=list)
    queued_companies: set[str] = field(default_factory=set)
    archived: list[ArchivedContact] = field(default_factory=list)
    changed_companies: int = 0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class EmailOwner:
    """The contact whose row feeds the lead of an e-mail key in this run."""

    id: str
    modified_ms: int
    row: int


def email_owner_rank(contact_id: str, modified_ms: int) -> tuple[int, int]:
    """Which of two contacts sharing an e-mail feeds the lead: the most recently modified (its data
    is the newest), ties to the lowest id (the older record). Smaller ranks first (pure)."""
    return (-modified_ms, int(contact_id))


def split_email_collisions(
    rows: Sequence[tuple[int, str, str | None, int]], owners: Mapping[str, EmailOwner]
) -> tuple[dict[int, str], dict[str, EmailOwner]]:
    """Contacts sharing an e-mail key (HubSpot matches e-mails case-blind; imports and integrations
    still leave `Ann@x.io` and `ann@x.io` on two contacts, and the lead would follow whichever came
    first, which differs between full and incremental reads).

    `rows`: (_row, contact id, e-mail key or None, lastmodifieddate ms) of one batch; `owners`: the
    keys sent by earlier batches of the run. Returns (_row -> reason for each row not sent, the new
    owners). Within a batch the rule of `email_owner_rank` picks the row, whatever the read order.
    A key already sent by an earlier batch keeps that row for this run (a second write would double
    the lead: the plan was made against the target as it was when the run started)."""
    groups: dict[str, list[tuple[int, str, int]]] = {}
    for row, cid, key, ms in rows:
        if key:
            groups.setdefault(key, []).append((row, cid, ms))
    skipped: dict[int, str] = {}
    new: dict[str, EmailOwner] = {}
    for key, group in groups.items():
        group.sort(key=lambda g: email_owner_rank(g[1], g[2]))
        earlier = owners.get(key)
        if earlier is None:
            row, cid, ms = group[0]
            new[key] = owner = EmailOwner(cid, ms, row)
            losers = group[1:]
        else:  # the same contact read twice is the Deduper's plain duplicate, not a shared e-mail
            owner, losers = earlier, [g for g in group if g[1] != earlier.id]
        for row, cid, ms in losers:
            if earlier is None:
                why = "modified later" if owner.modified_ms != ms else "same modification time, lower id"
                skipped[row] = (
                    f"shared e-mail: HubSpot contacts {owner.id} and {cid} have the same e-mail (case aside); "
                    f"contact {owner.id} feeds the lead ({why})"
                )
            else:
                prefer = email_owner_rank(cid, ms) < email_owner_rank(owner.id, owner.modified_ms)
                skipped[row] = (
                    f"shared e-mail: HubSpot contacts {owner.id} and {cid} have the same e-mail (case aside); "
                    f"contact {owner.id} (row {owner.row}) was sent earlier in this run"
                    + (f", though contact {cid} is the more recently modified" if prefer else "")
                )
    return skipped, new


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
    # urllib3 retries a 429 that carries Retry-After whatever the forcelist says: not here (see make_retry)
    RETRY_AFTER_STATUS_CODES = frozenset({503})

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
    """5xx and broken connections, POSTs included (search and batch reads are reads). Not 429:
    `HubSpotExtractor._call` waits those out itself, without a retry cap (a 429 never ends a run)."""
    retry = _CountingRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=backoff_factor,
        status_forcelist=SERVER_ERROR_STATUSES,  # urllib3 retries these; a 429 is `_call`'s (it never gives up)
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


def http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header as an aware datetime (None when absent or unreadable)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Throttle:
    """What a 429 says: how long to wait and which limit (HubSpot's `policyName`)."""

    wait_s: float
    policy: str


def read_throttle(headers: Mapping[str, str] | None, body: Any, *, default_wait_s: float = 1.0) -> Throttle:
    """Retry-After (seconds) and policyName from a 429 (pure). HubSpot's SECONDLY search 429 comes
    without Retry-After: wait one second, the window it counts."""
    wait = default_wait_s
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after" and (seconds := parse_retry_after(value)) is not None:
            wait = seconds
    policy = ""
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            policy = str(parsed.get("policyName") or "")
    return Throttle(wait, policy)


class SearchPacer:
    """At most `per_second` searches in any 1-second window (HubSpot's own search limit, per token,
    shared by every object's search), so that the read does not spend its time on 429s. The limit
    is learned: a SECONDLY 429 lowers it to what was accepted in the last second, and it creeps back up
    by one per `recover_s` without a 429 (another process sharing the token may have been the cause),
    never above where it started. Clock and sleep are injectable."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.1,
        recover_s: float = 30.0,
    ) -> None:
        self.per_second = per_second
        self.ceiling = per_second
        self.clock = clock
        self.sleep = sleep
        self.margin = margin
        self.recover_s = recover_s
        self.learned_at: float | None = None
        self.sent: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self.sent and self.sent[0] <= now - 1.0 - self.margin:
            self.sent.popleft()

    def wait(self) -> None:
        if self.per_second <= 0:
            return
        now = self.clock()
        if self.learned_at is not None and self.per_second < self.ceiling and now - self.learned_at >= self.recover_s:
            self.per_second, self.learned_at = self.per_second + 1, now
        cap = max(1, int(self.per_second))
        self._prune(now)
        while (wait := rolling_delay(now, self.sent, cap, 1.0, self.margin)) > 0:
            self.sleep(wait)
            now = self.clock()
            self._prune(now)
        self.sent.append(self.clock())

    def learn(self) -> None:
        """A SECONDLY 429: the portal allows fewer searches per second than were sent in the last one
        (the refused one included), and at least one."""
        self.learned_at = self.clock()
        self._prune(self.learned_at)
        accepted = max(1, len(self.sent) - 1)
        self.per_second = float(accepted) if self.per_second <= 0 else float(min(int(self.per_second), accepted))


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
        search_per_second: float = 5.0,
        max_held_rows: int = MAX_HELD_ROWS,
        throttle_budget_s: float = THROTTLE_BUDGET_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pace_from_headers: bool = True,
    ) -> None:
        register_secret(access_token)  # never in a log line
        self.page_size = min(max(1, page_size), 100)
        self.max_held_rows = max_held_rows
        self.throttle_budget_s = throttle_budget_s
        self._sleep = sleep
        self.stats: dict[str, int] = {
            "contacts_page": 0,
            "search": 0,
            "companies_batch": 0,
            "assoc_batch": 0,
            "archived_page": 0,
            "company_search": 0,
            "company_assoc_batch": 0,
            "contacts_batch": 0,
            "retries": 0,
            "throttled_429": 0,
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
        self._contacts_batch = client.crm.contacts.batch_api
        self._companies = client.crm.companies.batch_api
        self._company_search = client.crm.companies.search_api
        self._assoc = client.crm.associations.v4.batch_api
        self._pacer = SearchPacer(search_per_second, sleep=sleep)
        # every other endpoint: HubSpot's rolling 10-s budget, learned from its answers' headers
        self._budget = RollingBudget()
        self._clock = clock
        self._company_cache: dict[str, tuple[str | None, str | None] | None] = {}
        self._rows_out = 0
        self._emitted: set[str] = set()
        self.server_time: datetime | None = None  # HubSpot's Date at the run's first answer
        self.throttled_s = 0.0
        self.paced_s = 0.0  # waited before non-search calls so the 10-s window never overflows
        self.pace_from_headers = pace_from_headers  # False: the old way, 429s only (bench baseline)

    @property
    def search_per_second(self) -> float:
        """The search pace now (lower than configured once a SECONDLY 429 taught it)."""
        return self._pacer.per_second

    # --- the two modes ------------------------------------------------------------------------

    def full(self, *, archived_since: datetime | None = None) -> Iterator[HubSpotBatch]:
        """Every active contact, id order; company from the primary association. With
        `archived_since`, the last batch also lists the contacts archived after it."""
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
            if after is None and archived_since is not None:
                holder.archived.extend(self._archived_since(datetime_to_ms(archived_since), inclusive=False))
            yield from self._drain(holder, final=after is None)
            if after is None:
                return

    def changed_since(
        self, since: datetime, *, inclusive: bool = True, companies: bool = True
    ) -> Iterator[HubSpotBatch]:
        """Contacts modified at or after `since` (after, with inclusive=False), oldest change first;
        then (`companies`) the primary contacts of companies modified since then, not read already;
        then a last batch with the contacts archived since then."""
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
        if companies:
            yield from self._drain(holder, final=True)  # every contact read by search is out (and known)
            yield from self._company_changes(since_ms, inclusive, holder)
        holder.archived.extend(self._archived_since(since_ms, inclusive))
        yield from self._drain(holder, final=True)

    # --- company changes ------------------------------------------------------------------------

    def changed_companies(self, since_ms: int, inclusive: bool) -> dict[str, tuple[str | None, str | None]]:
        """Companies whose hs_lastmodifieddate is at/after `since`: id -> (name, domain). The same
        cursor as contacts (past the 10,000 cap, ties exact), on the same search pacer."""
        found: dict[str, tuple[str | None, str | None]] = {}
        cursor: SearchCursor | None = SearchCursor(since_ms, inclusive=inclusive, prop="hs_lastmodifieddate")
        while cursor is not None:
            self._pacer.wait()
            page = self._call(
                "company_search", self._company_search.do_search, cursor.body(SEARCH_LIMIT, COMPANY_SEARCH_PROPERTIES)
            )
            seen: list[tuple[int, int]] = []
            for obj in page.get("results") or []:
                props = obj.get("properties") or {}
                modified = props.get("hs_lastmodifieddate") or obj.get("updatedAt")
                seen.append((int(str(obj["id"])), iso_to_ms(str(modified))))
                found[str(obj["id"])] = (_text(props.get("name")), _text(props.get("domain")))
            cursor = cursor.advance(seen, next_after(page.get("paging")) is not None)
        return found

    def _company_changes(self, since_ms: int, inclusive: bool, holder: _Holder) -> Iterator[HubSpotBatch]:
        changed = self.changed_companies(since_ms, inclusive)
        holder.changed_companies = len(changed)
        if not changed:
            return
        self._company_cache.update(changed)  # fresh from the search: no batch read needed
        primary_of: dict[str, str] = {}
        for chunk in _chunks(sorted(changed), ASSOC_BATCH):
            inputs = {"inputs": [{"id": c} for c in chunk]}
            resp = self._call("company_assoc_batch", self._assoc.get_page, "companies", "contacts", inputs)
            primary_of.update(primaries_of_companies(resp.get("results") or []))
        todo = sorted((c for c in primary_of if c not in self._emitted), key=int)
        for chunk in _chunks(todo, CONTACT_BATCH):
            resp = self._call(
                "contacts_batch",
                self._contacts_batch.read,
                {"inputs": [{"id": c} for c in chunk], "properties": list(CONTACT_PROPERTIES)},
                archived=False,
            )
            for obj in sorted(resp.get("results") or [], key=lambda o: int(str(o["id"]))):
                holder.rows.append(_Row(self._values(obj), primary_of[str(obj["id"])], refresh=True))
            yield from self._drain(holder, final=False)

    def live_emails(self, emails: Sequence[str]) -> list[str]:
        """Those of `emails` that a live contact has as its e-mail (search, 100 values a request)."""
        found: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(e.strip().lower() for e in emails if e.strip())), NOT_IN_MAX):
            body = {
                "filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN", "values": chunk}]}],
                "properties": ["email"],
                "limit": SEARCH_LIMIT,
            }
            self._pacer.wait()
            page = self._call("search", self._search.do_search, body)
            found.extend(str(e) for o in page.get("results") or [] if (e := (o.get("properties") or {}).get("email")))
        return found

    # --- I/O helpers --------------------------------------------------------------------------

    def _start(self) -> None:
        self._company_cache.clear()  # "each company read once per run"
        self._rows_out = 0
        self._emitted.clear()
        self.server_time = None

    def _call(self, kind: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One API call: counted, its JSON body back, its failure turned into an error named by what
        to do. A 429 waits and tries again, however often, within `throttle_budget_s` in all."""
        self.stats[kind] += 1  # logical requests: urllib3's retries and our 429 waits are counted apart
        windowed = kind not in SEARCH_KINDS  # search answers carry no rate headers: the search pacer's
        while True:
            if windowed and self.pace_from_headers and (wait := self._budget.delay(self._clock())) > 0:
                self.paced_s += wait
                self._sleep(wait)
            try:
                body = fn(*args, **kwargs)
            except (ContactsApiException, CompaniesApiException, AssocApiException) as exc:
                status = int(getattr(exc, "status", 0) or 0)
                if status == 429:
                    if windowed:
                        headers = getattr(exc, "headers", None)
                        self._budget.on_answer(self._clock(), RollingHeaders.parse(headers), throttled=True)
                    self._throttled(kind, exc)
                    continue
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
            if windowed:
                self._budget.on_answer(self._clock(), RollingHeaders.parse(self._headers_of(fn)))
            if self.server_time is None:
                self.server_time = self._date_of(fn)
            if not isinstance(body, dict):
                raise HubSpotApiError(f"HubSpot answered {kind} with an unexpected body.")
            return body

    def _throttled(self, kind: str, exc: Exception) -> None:
        headers = getattr(exc, "headers", None)
        throttle = read_throttle(dict(headers) if headers else None, getattr(exc, "body", None))
        self.stats["throttled_429"] += 1
        if throttle.policy.upper() == "SECONDLY" and kind in SEARCH_KINDS:
            self._pacer.learn()
        if self.throttled_s + throttle.wait_s > self.throttle_budget_s:
            raise TargetUnreachable(
                f"HubSpot kept answering 429 ({throttle.policy or 'rate limit'}) to {kind} for "
                f"{self.throttled_s:.0f} s; try again later (the mark did not move)."
            )
        self.throttled_s += throttle.wait_s
        self._sleep(throttle.wait_s)
        if kind in SEARCH_KINDS:
            self._pacer.wait()

    @staticmethod
    def _headers_of(fn: Callable[..., Any]) -> Mapping[str, str] | None:
        """The headers of the answer `fn` just got: the official client exposes no rate-limit
        information, only the raw answer it keeps as `api_client.last_response`."""
        api_client = getattr(getattr(fn, "__self__", None), "api_client", None)
        getheaders = getattr(getattr(api_client, "last_response", None), "getheaders", None)
        headers = getheaders() if callable(getheaders) else None
        return headers if isinstance(headers, Mapping) else None

    @classmethod
    def _date_of(cls, fn: Callable[..., Any]) -> datetime | None:
        """The Date header of the answer `fn` just got."""
        headers = cls._headers_of(fn)
        return http_date(next((v for k, v in headers.items() if k.lower() == "date"), None)) if headers else None

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
        archived = tuple(holder.archived) if final else ()
        if final:
            holder.archived.clear()
        changed_companies = holder.changed_companies if final else 0
        if final:
            holder.changed_companies = 0
        if ready or archived or changed_companies:
            frame = build_frame(ready, self._company_cache, self._rows_out + 1)
            self._rows_out += len(ready)
            self._emitted.update(str(r.values["hs_object_id"]) for r in ready)
            merges = tuple(
                Merge(str(r.values["hs_object_id"]), ids, split_list(r.values.get("hs_additional_emails")))
                for r in ready
                if (ids := split_list(r.values.get("hs_merged_object_ids")))
            )
            yield HubSpotBatch(
                frame=frame,
                archived=len(archived),
                max_modified=_max_iso(r.values.get("lastmodifieddate") for r in ready),
                archived_ids=tuple(a.id for a in archived),
                archived_contacts=archived,
                merges=merges,
                refreshed=sum(1 for r in ready if r.refresh),
                changed_companies=changed_companies,
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

    def _archived_since(self, since_ms: int, inclusive: bool) -> list[ArchivedContact]:
        """Contacts archived since `since` (search never returns archived ones): the archived listing,
        read in full and in id order (it can't be filtered; HubSpot keeps 90 days of it)."""
        found: list[ArchivedContact] = []
        after: str | None = None
        while True:
            page = self._call(
                "archived_page",
                self._contacts.get_page,
                limit=100,
                after=after,
                properties=["hs_object_id", "email"],
                archived=True,
            )
            for obj in page.get("results") or []:
                at = obj.get("archivedAt")
                email = (obj.get("properties") or {}).get("email")
                found.append(ArchivedContact(str(obj["id"]), _text(email), at if isinstance(at, str) else None))
            after = next_after(page.get("paging"))
            if after is None:
                return archived_after(found, since_ms, inclusive)


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


# --- the pipeline source and the incremental job adapter ----------------------------------------


def parse_iso(value: str) -> datetime:
    """A HubSpot timestamp (`2026-11-30T10:00:00.123Z`) as an aware datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class HubSpotSource:
    """HubSpot contacts (full, or changed since `since`) with their primary company.

    Besides the frames it keeps what a sync acts on after the import: the archived contacts and the
    merge survivors it read, the e-mail keys of the live contacts it read, and HubSpot's clock."""

    access_token: str
    host: str
    since: datetime | None = None
    archived_since: datetime | None = None  # a full read also lists the contacts archived after it

    def __post_init__(self) -> None:
        self.extractor = HubSpotExtractor(self.access_token, host=self.host)
        self.name = "hubspot" if self.since is None else "hubspot:incremental"
        self.archived: list[ArchivedContact] = []
        self.merges: list[Merge] = []
        self.live_emails: list[str] = []
        self.newest: str | None = None  # the newest lastmodifieddate read (HubSpot's ISO text)

    def batches(self) -> Iterator[SourceBatch]:
        ex = self.extractor
        it = ex.full(archived_since=self.archived_since) if self.since is None else ex.changed_since(self.since)
        owners: dict[str, EmailOwner] = {}
        for batch in it:
            frame, rejects = self._shared_emails(batch.frame, owners)
            batch = replace(batch, frame=frame)
            status = batch.frame.get_column("company_status") if batch.frame.height else None
            counters = {
                "company_deleted": int((status == STATUS_DELETED).sum()) if status is not None else 0,
                "no_company": int((status == STATUS_NONE).sum()) if status is not None else 0,
                "refreshed_for_company": batch.refreshed,
                "changed_companies": batch.changed_companies,
            }
            if batch.max_modified and (self.newest is None or iso_to_ms(batch.max_modified) > iso_to_ms(self.newest)):
                self.newest = batch.max_modified
            self.archived.extend(batch.archived_contacts)
            self.merges.extend(batch.merges)
            if batch.frame.height:
                self.live_emails.extend(e for e in batch.frame.get_column("email").to_list() if e)
            if rejects.height:  # skipped for a shared e-mail, still live contacts
                self.live_emails.extend(e for e in rejects.get_column("email").to_list() if e)
            mark = parse_iso(batch.max_modified) if batch.max_modified else None
            counters["shared_email"] = rejects.height
            yield SourceBatch(batch.frame, rejects, counters, mark)

    @staticmethod
    def _shared_emails(frame: pl.DataFrame, owners: dict[str, EmailOwner]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(rows to send, rows skipped with their reason); `owners` learns this batch's keys."""
        if not frame.height:
            return frame, no_rejects()
        from etl.transform.steps import normalise_email

        keys = normalise_email(frame.select("email")).get_column("_key").to_list()
        modified = [iso_to_ms(m) if m else 0 for m in frame.get_column("lastmodifieddate").to_list()]
        rows = list(zip(frame.get_column("_row").to_list(), frame.get_column("hs_object_id").to_list(), keys, modified,
                        strict=True))
        skipped, new = split_email_collisions(rows, owners)
        owners.update(new)
        if not skipped:
            return frame, no_rejects()
        reasons = pl.DataFrame(
            {"_row": list(skipped), "_reason": list(skipped.values())}, schema={"_row": pl.Int64, "_reason": pl.String}
        )
        out = frame.join(reasons, on="_row", how="inner").with_columns(pl.lit("shared_email").alias("_rule"))
        return frame.filter(~pl.col("_row").is_in(reasons.get_column("_row").implode())), out

    @property
    def requests(self) -> dict[str, int]:
        return dict(self.extractor.stats)

    def api_requests(self) -> dict[str, Any]:
        """etl.sources.source_requests: logical requests (retries and 429s are counted apart)."""
        stats = self.requests
        sent = sum(n for kind, n in stats.items() if kind not in ("retries", "throttled_429"))
        return {"api": "HubSpot", "total": sent, **stats}


def incremental(spec: JobSpec, settings: Settings, mapping: LeadMapping) -> HubSpotIncremental:
    """The adapter for a `source = "hubspot"` job (or `import hubspot`): etl.hubspot_sync."""
    from etl.config import check_url
    from etl.errors import UsageError
    from etl.hubspot_sync import DEFAULT_LOOKBACK, HubSpotIncremental
    from etl.jobs import parse_duration

    if not settings.hubspot_token:
        raise UsageError("no HubSpot token: set HUBSPOT_ACCESS_TOKEN (a private-app token)")
    host = check_url(settings.hubspot_base_url, allow_insecure_http=settings.allow_insecure_http, what="HubSpot URL")
    every = spec.full_every
    return HubSpotIncremental(
        settings.hubspot_token, host, lookback=spec.lookback_delta(DEFAULT_LOOKBACK),
        full_every=parse_duration(every) if every else None, on_archive=spec.on_archive,
    )
