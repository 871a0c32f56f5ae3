"""The LeadGenius sandbox state: plain Python, no HTTP (moto style, DESIGN habit 5).

Methods are named after the API operations of SPEC Part A and raise the typed errors of
`errors.py`; `app.py` maps them to status codes and the error body. The documented quirks of
the real service are reproduced here on purpose; each is marked `quirk N` (SPEC A3 numbering).

Leads live in per-(company, literal client_id) indexes ordered by an internal sequence number,
so a page is a bisect plus `limit` steps (never a scan of the store) and a `nextToken` (the last
sequence number) stays correct while leads are inserted or deleted between pages.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import functools
import random
import secrets
import string
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from etl.fields import LEAD_FIELD_SET, LEAD_FIELDS
from etl.sandbox.leadgenius import tokens
from etl.sandbox.leadgenius.errors import (
    AlreadyExists,
    InsufficientPermissions,
    InvalidFormat,
    InvalidValue,
    MissingField,
    NotFound,
    NoValidCredentials,
    NoValidTokens,
    OwnerMismatch,
    PurgeTimeout,
    QuirkError,
    TokenExpired,
)
from etl.sandbox.leadgenius.persist import NullPersistence, open_persistence
from etl.slug import slugify

Lead = dict[str, Any]
Client = dict[str, Any]

ENRICH = "enrich"
SOURCE = "source"
TABLES = (ENRICH, SOURCE)

LEADS_DEFAULT_LIMIT = 100
LEADS_MAX_LIMIT = 1000
BULK_DEFAULT_LIMIT = 1000
BULK_MAX_LIMIT = 5000
PURGE_MAX_LEADS = 1000  # seed 002: "purge=true ... will time out if the client has more than ~1,000 leads"


@dataclass(frozen=True)
class Tenant:
    """A sandbox user and the company it belongs to (one user per company)."""

    email: str
    password: str
    user_id: str
    company_id: str
    company_name: str
    api_key: str


DEMO_TENANT = Tenant(
    email="demo@leadgenius.local",
    password="demo-password",
    user_id="4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61",
    company_id="company-demo",
    company_name="Demo Company",
    api_key="lgk_demo_7f3a9c2e5b8d41f6a0c9e3b7d2f5a8c1",
)
OTHER_TENANT = Tenant(
    email="other@leadgenius.local",
    password="other-password",
    user_id="9b1d3f5e-7a2c-4e6b-8d0f-1a3c5e7b9d24",
    company_id="company-other",
    company_name="Other Company",
    api_key="lgk_other_2d6e8a0c4f1b47e39a5c7e1d3b9f0a62",
)
TENANTS: tuple[Tenant, ...] = (DEMO_TENANT, OTHER_TENANT)


@dataclass
class SandboxConfig:
    """Knobs of the sandbox; all but `db_path` can be changed live with PUT /__admin/config."""

    rate_limit_per_min: int = 0  # 0 = unlimited (headers then advertise UNLIMITED_BUDGET)
    latency_ms: float = 0
    token_ttl_s: int = 3600
    drop_probability: float = 0.0  # single-lead POSTs answered 201 but not stored
    batch_persist_ratio: float = 0.5  # quirk 1: share of a batch POST actually stored
    seed: int = 0
    db_path: str | None = None
    rate_window_s: float = 60.0  # hidden knob: a short window keeps rate-limit tests fast

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with `changes` applied, validated; raises InvalidValue."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        values = self.to_dict()
        for key, value in changes.items():
            if key not in fields:
                raise InvalidValue(f"Unknown config key '{key}'", details=f"known keys: {sorted(fields)}")
            if key == "db_path":
                if value != self.db_path:
                    raise InvalidValue("db_path cannot be changed while running")
                continue
            values[key] = _coerce_config_value(key, value)
        return SandboxConfig(**values)


def _coerce_config_value(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"Config '{key}' must be a number")
    if key in ("rate_limit_per_min", "token_ttl_s", "seed"):
        if int(value) != value:
            raise InvalidValue(f"Config '{key}' must be an integer")
        value = int(value)
    else:
        value = float(value)
    if key in ("drop_probability", "batch_persist_ratio") and not 0.0 <= value <= 1.0:
        raise InvalidValue(f"Config '{key}' must be between 0 and 1")
    if key in ("rate_limit_per_min", "latency_ms") and value < 0:
        raise InvalidValue(f"Config '{key}' must be >= 0")
    if key in ("token_ttl_s", "rate_window_s") and value <= 0:
        raise InvalidValue(f"Config '{key}' must be > 0")
    return value


# --- pagination tokens -------------------------------------------------------------------------


def encode_next_token(seq: int) -> str:
    """Opaque to clients: base64url of the last returned item's sequence number."""
    return base64.urlsafe_b64encode(f"lg1:{seq}".encode()).decode("ascii").rstrip("=")


def decode_next_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        prefix, _, number = raw.partition(":")
        if prefix != "lg1":
            raise ValueError(raw)
        return int(number)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidFormat("Invalid nextToken", details="nextToken must be a token returned by this API") from None


# --- indexes -----------------------------------------------------------------------------------


class _Row:
    """A stored lead: its internal sequence number and its public fields."""

    __slots__ = ("data", "seq")

    def __init__(self, seq: int, data: Lead) -> None:
        self.seq = seq
        self.data = data


class _Index:
    """Rows of one partition in sequence order; deletions are lazy, compacted when they pile up."""

    __slots__ = ("rows", "seqs")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.rows: dict[int, _Row] = {}

    def add(self, row: _Row) -> None:
        if not self.seqs or row.seq > self.seqs[-1]:
            self.seqs.append(row.seq)
        else:  # a lead moved here by PUT client_id keeps its sequence number
            bisect.insort(self.seqs, row.seq)
        self.rows[row.seq] = row

    def remove(self, row: _Row) -> None:
        self.rows.pop(row.seq, None)
        dead = len(self.seqs) - len(self.rows)
        if dead > 64 and dead > len(self.rows):
            self.seqs = [s for s in self.seqs if s in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def page(self, after: int | None, limit: int) -> list[_Row]:
        start = 0 if after is None else bisect.bisect_right(self.seqs, after)
        out: list[_Row] = []
        rows = self.rows
        for i in range(start, len(self.seqs)):
            row = rows.get(self.seqs[i])
            if row is not None:
                out.append(row)
                if len(out) == limit:
                    break
        return out

    def __iter__(self) -> Iterator[_Row]:
        return iter(self.page(None, len(self.seqs) + 1))


class _Table:
    """One lead table (EnrichLeads or SourceLeads) with its look-up indexes."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Row] = {}
        self.by_company: dict[str, _Index] = {}
        self.by_client: dict[tuple[str, str], _Index] = {}
        self.by_email: dict[tuple[str, str], dict[str, None]] = {}
        self.by_linkedin: dict[tuple[str, str], dict[str, None]] = {}

    def add(self, row: _Row) -> None:
        d = row.data
        company = d["company_id"]
        self.by_id[d["id"]] = row
        self._index(self.by_company, company).add(row)
        self._index(self.by_client, (company, d.get("client_id", ""))).add(row)
        self._add_lookup(row)

    def remove(self, row: _Row) -> None:
        d = row.data
        company = d["company_id"]
        self.by_id.pop(d["id"], None)
        self.by_company[company].remove(row)
        self.by_client[(company, d.get("client_id", ""))].remove(row)
        self._remove_lookup(row)

    def replace(self, row: _Row, new_data: Lead) -> None:
        """Swap a row's fields, moving it between indexes if client_id/email/linkedinUrl changed."""
        old = row.data
        company = old["company_id"]
        self._remove_lookup(row)
        if old.get("client_id", "") != new_data.get("client_id", ""):
            self.by_client[(company, old.get("client_id", ""))].remove(row)
            row.data = new_data
            self._index(self.by_client, (company, new_data.get("client_id", ""))).add(row)
        row.data = new_data
        self._add_lookup(row)

    @staticmethod
    def _index(indexes: dict[Any, _Index], key: Any) -> _Index:
        index = indexes.get(key)
        if index is None:
            index = indexes[key] = _Index()
        return index

    def _lookup_keys(self, row: _Row) -> Iterator[tuple[dict[tuple[str, str], dict[str, None]], tuple[str, str]]]:
        d = row.data
        email = d.get("email")
        if isinstance(email, str):
            yield self.by_email, (d["company_id"], email.strip().lower())
        url = d.get("linkedinUrl")
        if isinstance(url, str):
            yield self.by_linkedin, (d["company_id"], url.strip())

    def _add_lookup(self, row: _Row) -> None:
        for table, key in self._lookup_keys(row):
            table.setdefault(key, {})[row.data["id"]] = None

    def _remove_lookup(self, row: _Row) -> None:
        for table, key in self._lookup_keys(row):
            ids = table.get(key)
            if ids is not None:
                ids.pop(row.data["id"], None)
                if not ids:
                    del table[key]


# --- quirk checks ------------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)


def _punctuation_only(value: str) -> bool:
    """Quirk 4: a lastName of only punctuation and spaces, unless it is all dashes."""
    if all(ch == "-" for ch in value):
        return False
    return all(
        ch.isspace() or ch in _PUNCTUATION or unicodedata.category(ch)[0] in ("P", "S") for ch in value
    )


def check_lead_fields(body: dict[str, Any], *, allow_id: bool) -> None:
    """Reproduce the 500s of quirks 2, 3 and 4 (and the null / non-string cases) for one lead."""
    for key, value in body.items():
        if key == "id" and allow_id:
            if not isinstance(value, str) or not value.strip():
                raise InvalidValue("Lead id must be a non-empty string")
            continue
        if key not in LEAD_FIELD_SET:  # quirk 2: `phone`, server-set fields, anything unknown
            raise QuirkError("unknown_field", f"Field '{key}' is not defined on EnrichLeads")
        if value is None:  # SPEC A3: a null value gets 500
            raise QuirkError("null_value", f"Field '{key}' is null")
        if not isinstance(value, str):  # every lead field is a string
            raise QuirkError("non_string_value", f"Field '{key}' must be a string")
        if not value.strip():  # quirk 3: empty strings kill the request
            raise QuirkError("empty_value", f"Field '{key}' is an empty string")
        if key == "lastName" and _punctuation_only(value):  # quirk 4: dot-only last name
            raise QuirkError("punctuation_last_name", f"lastName {value!r} is only punctuation")


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _project(data: Lead, fields: tuple[str, ...] | None) -> Lead:
    if fields is None:
        return data
    out = {"id": data["id"]}
    for f in fields:
        if f in data:
            out[f] = data[f]
    return out


# --- the store ---------------------------------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    """Serialise store operations (the app is single-threaded, in-process users may not be)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


@dataclass
class Page:
    """One page of leads and the token of the next one (None when the page was short)."""

    items: list[Lead]
    next_token: str | None


class LeadGeniusStore:
    """All tenants, clients and leads of the sandbox, and the operations of SPEC Part A."""

    def __init__(self, config: SandboxConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self.started_config = dataclasses.replace(config) if config else SandboxConfig()
        self.config = dataclasses.replace(self.started_config)
        self._clock = clock
        self.clock_offset = 0.0
        self._persist: NullPersistence = open_persistence(self.config.db_path)
        self._tenants_by_email = {t.email.lower(): t for t in TENANTS}
        self._tenants_by_user = {t.user_id: t for t in TENANTS}
        self._tenants_by_key = {t.api_key: t for t in TENANTS}
        self._tenants_by_company = {t.company_id: t for t in TENANTS}
        self._wipe_memory()
        self._load()

    # -- lifecycle ------------------------------------------------------------------------------

    def _wipe_memory(self) -> None:
        self._seq = 0
        self._tables = {name: _Table() for name in TABLES}
        self._clients: dict[str, dict[str, Client]] = {}  # company_id -> id -> client
        self._client_seq: dict[str, int] = {}
        self._client_slugs: dict[tuple[str, str], str] = {}  # (company_id, slug) -> id
        self._refresh_tokens: dict[str, str] = {}  # token -> user_id
        self._reseed()

    def _reseed(self) -> None:
        seed = self.config.seed
        self.batch_rng = random.Random(f"batch:{seed}")
        self.drop_rng = random.Random(f"drop:{seed}")

    def _load(self) -> None:
        state = self._persist.load()
        secret = state.meta.get("secret")
        if secret is None:
            secret = secrets.token_hex(32)
            self._persist.put_meta("secret", secret)
        self._secret = bytes.fromhex(secret)
        for seq, client in state.clients:
            self._remember_client(client, seq)
            self._seq = max(self._seq, seq)
        for table, seq, data in state.leads:
            self._tables[table].add(_Row(seq, data))
            self._seq = max(self._seq, seq)
        self._refresh_tokens.update(state.refresh_tokens)

    @_locked
    def reset(self) -> None:
        """Wipe data, restore the started config; the two tenants always exist."""
        self.config = dataclasses.replace(self.started_config)
        self.clock_offset = 0.0
        self._persist.wipe()
        self._wipe_memory()

    @_locked
    def set_config(self, changes: dict[str, Any]) -> SandboxConfig:
        new = self.config.updated(changes)
        reseed = new.seed != self.config.seed
        self.config = new
        if reseed:
            self._reseed()
        return new

    def close(self) -> None:
        self._persist.close()

    def now(self) -> float:
        """Wall clock plus the admin clock offset (POST /__admin/clock)."""
        return self._clock() + self.clock_offset

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- A1 authentication ----------------------------------------------------------------------

    def tenant_by_ref(self, ref: str) -> Tenant:
        """A tenant by email or company_id."""
        tenant = self._tenants_by_email.get(ref.lower()) or self._tenants_by_company.get(ref)
        if tenant is None:
            raise NotFound(f"Unknown tenant '{ref}'")
        return tenant

    def _tokens(self, tenant: Tenant, refresh_token: str) -> dict[str, Any]:
        now, ttl = self.now(), self.config.token_ttl_s
        common = {"sub": tenant.user_id, "email": tenant.email, "company_id": tenant.company_id}
        return {
            "accessToken": tokens.issue(**common, token_use="access", now=now, ttl_s=ttl, secret=self._secret),
            "idToken": tokens.issue(**common, token_use="id", now=now, ttl_s=ttl, secret=self._secret),
            "refreshToken": refresh_token,
            "expiresIn": ttl,
        }

    @_locked
    def authenticate(self, username: Any, password: Any) -> dict[str, Any]:
        """POST /api/auth."""
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            raise NoValidCredentials("Missing credentials", details="username and password are required")
        tenant = self._tenants_by_email.get(username.strip().lower())
        if tenant is None or not secrets.compare_digest(tenant.password, password):
            raise NoValidCredentials("Incorrect username or password")
        refresh = "lgr_" + secrets.token_urlsafe(32)
        self._refresh_tokens[refresh] = tenant.user_id
        self._persist.put_refresh_token(refresh, tenant.user_id)
        return self._tokens(tenant, refresh)

    @_locked
    def refresh(self, refresh_token: Any) -> dict[str, Any]:
        """POST /api/auth/refresh: a new access token, same refresh token (as Cognito does)."""
        if not isinstance(refresh_token, str) or not refresh_token:
            raise NoValidCredentials("Missing refreshToken")
        user_id = self._refresh_tokens.get(refresh_token)
        if user_id is None:
            raise NoValidTokens("Invalid refresh token", details="The refresh token is unknown or revoked")
        return self._tokens(self._tenants_by_user[user_id], refresh_token)

    def resolve_bearer(self, authorization: str | None) -> Tenant:
        """The tenant of an `Authorization: Bearer <jwt>` header."""
        if not authorization:
            raise NoValidCredentials("Authentication required", details="No Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NoValidCredentials("Authentication required", details="Expected 'Authorization: Bearer <token>'")
        payload = tokens.verify(token.strip(), self._secret)
        if payload is None or payload.get("token_use") not in ("access", "id"):
            raise NoValidTokens("Invalid token", details="The token is malformed or was not issued by this server")
        tenant = self._tenants_by_user.get(str(payload.get("sub")))
        if tenant is None:
            raise NoValidTokens("Invalid token", details="Unknown token subject")
        exp = payload.get("exp")
        if not isinstance(exp, int | float) or self.now() >= exp:
            raise TokenExpired("Token expired", details="The access token has expired")
        return tenant

    def resolve_api_key(self, api_key: str | None, user_id: str | None) -> Tenant:
        """The tenant of `x-api-key` + `x-user-id` (bulk endpoints only)."""
        if not api_key:
            raise NoValidCredentials("API key required", details="Send x-api-key and x-user-id")
        tenant = self._tenants_by_key.get(api_key.strip())
        if tenant is None:
            raise NoValidCredentials("Invalid API key")
        if not user_id:
            raise NoValidCredentials("x-user-id required", details="Send the key owner's user id in x-user-id")
        if user_id.strip() != tenant.user_id:
            raise OwnerMismatch("x-user-id does not own this API key")
        return tenant

    # -- A2 company and clients -----------------------------------------------------------------

    def get_company(self, tenant: Tenant) -> dict[str, Any]:
        return {"company_id": tenant.company_id, "name": tenant.company_name, "owner": tenant.user_id}

    def _remember_client(self, client: Client, seq: int) -> None:
        self._client_seq[client["id"]] = seq
        company = client["company_id"]
        self._clients.setdefault(company, {})[client["id"]] = client
        self._client_slugs[(company, client["client_id"])] = client["id"]

    def list_clients(self, tenant: Tenant) -> list[Client]:
        return list(self._clients.get(tenant.company_id, {}).values())

    def get_client(self, tenant: Tenant, key: str) -> Client:
        """By record UUID or by slug."""
        clients = self._clients.get(tenant.company_id, {})
        client = clients.get(key)
        if client is None:
            client_uuid = self._client_slugs.get((tenant.company_id, key))
            client = clients.get(client_uuid) if client_uuid else None
        if client is None:
            raise NotFound("Client not found", details=f"No client '{key}' in this company")
        return client

    @_locked
    def create_client(self, tenant: Tenant, body: dict[str, Any]) -> Client:
        name = body.get("clientName")
        if not isinstance(name, str) or not name.strip():
            raise MissingField("clientName is required")
        slug = slugify(name)
        if not slug:
            raise InvalidValue("clientName has no letters or digits", details=f"clientName {name!r}")
        if (tenant.company_id, slug) in self._client_slugs:
            raise AlreadyExists("Client already exists", details=f"client_id '{slug}' is taken in this company")
        client: Client = {
            "id": str(uuid.uuid4()),
            "client_id": slug,
            "clientName": name.strip(),
            "companyURL": self._opt_str(body, "companyURL"),
            "description": self._opt_str(body, "description"),
            "owner": tenant.user_id,
            "company_id": tenant.company_id,
            "createdAt": _iso(self.now()),
        }
        seq = self._next_seq()
        self._remember_client(client, seq)
        self._persist.put_clients([(seq, client)])
        return client

    @staticmethod
    def _opt_str(body: dict[str, Any], key: str) -> str | None:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidValue(f"{key} must be a string")
        return value

    @_locked
    def update_client(self, tenant: Tenant, body: dict[str, Any]) -> Client:
        """PUT /api/clients by record UUID; the slug never changes (leads keep pointing at it)."""
        client_uuid = body.get("id")
        if not isinstance(client_uuid, str) or not client_uuid:
            raise MissingField("id is required")
        client = self._clients.get(tenant.company_id, {}).get(client_uuid)
        if client is None:
            raise NotFound("Client not found", details=f"No client with id '{client_uuid}'")
        if "clientName" in body:
            name = body["clientName"]
            if not isinstance(name, str) or not name.strip():
                raise InvalidValue("clientName must be a non-empty string")
            client["clientName"] = name.strip()
        for key in ("companyURL", "description"):
            if key in body:
                client[key] = self._opt_str(body, key)
        self._persist.put_clients([(self._client_seq[client_uuid], client)])
        return client

    @_locked
    def delete_client(self, tenant: Tenant, client_uuid: str | None, *, purge: bool) -> int:
        """DELETE /api/clients; returns the number of leads purged.

        With purge and more than 1,000 leads the real service times out (504) and deletes nothing.
        """
        if not client_uuid:
            raise MissingField("id is required")
        client = self._clients.get(tenant.company_id, {}).get(client_uuid)
        if client is None:
            raise NotFound("Client not found", details=f"No client with id '{client_uuid}'")
        purged = 0
        if purge:
            table = self._tables[ENRICH]
            index = table.by_client.get((tenant.company_id, client["client_id"]))
            rows = list(index) if index is not None else []
            if len(rows) > PURGE_MAX_LEADS:
                raise PurgeTimeout(
                    "Gateway timeout", details=f"Purging {len(rows)} leads timed out; nothing was deleted"
                )
            for row in rows:
                table.remove(row)
            self._persist.delete_leads(r.data["id"] for r in rows)
            purged = len(rows)
        del self._clients[tenant.company_id][client_uuid]
        self._client_slugs.pop((tenant.company_id, client["client_id"]), None)
        self._client_seq.pop(client_uuid, None)
        self._persist.delete_clients([client_uuid])
        return purged

    # -- A3 leads -------------------------------------------------------------------------------

    @staticmethod
    def _check_limit(limit: int, maximum: int) -> None:
        if not 1 <= limit <= maximum:
            raise InvalidValue("limit out of range", details=f"limit must be between 1 and {maximum}")

    def list_leads(self, tenant: Tenant, client_id: str | None, limit: int, next_token: str | None) -> Page:
        """GET /api/leads: one page of a client's leads by the literal client_id (quirk 5)."""
        if not client_id:
            raise MissingField("client_id is required", details="Pass the client's slug as client_id")
        self._check_limit(limit, LEADS_MAX_LIMIT)
        after = decode_next_token(next_token) if next_token else None
        index = self._tables[ENRICH].by_client.get((tenant.company_id, client_id))
        return self._page(index, after, limit, None)

    @staticmethod
    def _page(index: _Index | None, after: int | None, limit: int, fields: tuple[str, ...] | None) -> Page:
        rows = index.page(after, limit) if index is not None else []
        # A full page always carries a token, even when nothing follows (the next page is empty).
        token = encode_next_token(rows[-1].seq) if len(rows) == limit else None
        return Page([_project(r.data, fields) for r in rows], token)

    def _new_row(self, tenant: Tenant, fields: dict[str, Any], now: str) -> _Row:
        data: Lead = {"id": f"lead-{uuid.uuid4()}"}
        data.update(fields)
        data["company_id"] = tenant.company_id
        data["owner"] = tenant.user_id
        data["createdAt"] = now
        data["updatedAt"] = now
        return _Row(self._next_seq(), data)

    @staticmethod
    def _require_client_id(body: dict[str, Any]) -> None:
        if "client_id" not in body:
            raise MissingField("client_id is required", details="Every lead needs the client's slug")

    @_locked
    def create_lead(self, tenant: Tenant, body: dict[str, Any]) -> tuple[Lead, bool]:
        """POST /api/leads (one lead). Returns the lead and whether it was really stored.

        The client_id is stored literally: a client UUID here makes an invisible lead (quirk 5).
        No dedup by email (quirk 7). With `drop_probability` the lead is silently not stored.
        """
        check_lead_fields(body, allow_id=False)
        self._require_client_id(body)
        row = self._new_row(tenant, body, _iso(self.now()))
        cfg = self.config
        if cfg.drop_probability > 0 and self.drop_rng.random() < cfg.drop_probability:
            return row.data, False
        self._tables[ENRICH].add(row)
        self._persist.put_leads(ENRICH, [(row.seq, row.data)])
        return row.data, True

    @staticmethod
    def _batch_items(items: Any, key: str) -> list[dict[str, Any]]:
        if not isinstance(items, list):
            raise InvalidFormat(f"'{key}' must be a list")
        return items

    @_locked
    def batch_create_leads(self, tenant: Tenant, items: Any) -> tuple[int, int]:
        """POST /api/leads {"leads": [...]}: reports them all created, stores only some (quirk 1).

        Returns (created as reported to the caller, really stored).
        """
        leads = self._batch_items(items, "leads")
        for i, item in enumerate(leads):  # one bad item fails the whole batch, nothing stored
            if not isinstance(item, dict):
                raise QuirkError("batch_item", f"leads[{i}] is not an object")
            try:
                check_lead_fields(item, allow_id=False)
            except QuirkError as exc:
                raise QuirkError("batch_item", f"leads[{i}]: {exc.details}") from None
            self._require_client_id(item)
        now = _iso(self.now())
        ratio = self.config.batch_persist_ratio
        stored = [self._new_row(tenant, item, now) for item in leads if self.batch_rng.random() < ratio]
        table = self._tables[ENRICH]
        for row in stored:
            table.add(row)
        self._persist.put_leads(ENRICH, ((r.seq, r.data) for r in stored))
        return len(leads), len(stored)

    def _lead_row(self, tenant: Tenant, lead_id: Any, table: str = ENRICH) -> _Row:
        row = self._tables[table].by_id.get(lead_id) if isinstance(lead_id, str) else None
        if row is None or row.data["company_id"] != tenant.company_id:
            raise NotFound("Lead not found", details=f"No lead with id '{lead_id}'")
        return row

    def get_lead(self, tenant: Tenant, lead_id: str) -> Lead:
        """GET /api/enrich-leads/{id}."""
        return self._lead_row(tenant, lead_id).data

    def _apply_update(self, row: _Row, body: dict[str, Any], now: str) -> None:
        new = dict(row.data)
        for key, value in body.items():
            if key != "id":
                new[key] = value
        new["updatedAt"] = now
        self._tables[ENRICH].replace(row, new)

    @_locked
    def update_lead(self, tenant: Tenant, body: dict[str, Any], lead_id: str | None = None) -> Lead:
        """PUT /api/leads {"id", ...} or PUT /api/enrich-leads/{id}."""
        check_lead_fields(body, allow_id=True)
        if lead_id is None:
            lead_id = body.get("id")
            if lead_id is None:
                raise MissingField("id is required")
        elif "id" in body and body["id"] != lead_id:
            raise InvalidValue("Body id does not match the path id")
        row = self._lead_row(tenant, lead_id)
        self._apply_update(row, body, _iso(self.now()))
        self._persist.put_leads(ENRICH, [(row.seq, row.data)])
        return row.data

    @_locked
    def batch_update_leads(self, tenant: Tenant, items: Any) -> int:
        """PUT /api/leads {"leads": [{"id", ...}]}: all or nothing."""
        leads = self._batch_items(items, "leads")
        rows: list[_Row] = []
        for i, item in enumerate(leads):
            if not isinstance(item, dict):
                raise QuirkError("batch_item", f"leads[{i}] is not an object")
            try:
                check_lead_fields(item, allow_id=True)
            except QuirkError as exc:
                raise QuirkError("batch_item", f"leads[{i}]: {exc.details}") from None
            if "id" not in item:
                raise MissingField("id is required", details=f"leads[{i}] has no id")
            rows.append(self._lead_row(tenant, item["id"]))
        now = _iso(self.now())
        for row, item in zip(rows, leads, strict=True):
            self._apply_update(row, item, now)
        self._persist.put_leads(ENRICH, ((r.seq, r.data) for r in rows))
        return len(rows)

    @_locked
    def delete_lead(self, tenant: Tenant, lead_id: str) -> None:
        """DELETE /api/leads?id=."""
        row = self._lead_row(tenant, lead_id)
        self._tables[ENRICH].remove(row)
        self._persist.delete_leads([lead_id])

    @_locked
    def batch_delete_leads(self, tenant: Tenant, ids: Any) -> int:
        """DELETE /api/leads {"ids": [...]}: unknown ids are skipped; returns how many were deleted."""
        id_list = self._batch_items(ids, "ids")
        table = self._tables[ENRICH]
        deleted: list[str] = []
        for lead_id in id_list:
            row = table.by_id.get(lead_id) if isinstance(lead_id, str) else None
            if row is not None and row.data["company_id"] == tenant.company_id:
                table.remove(row)
                deleted.append(lead_id)
        self._persist.delete_leads(deleted)
        return len(deleted)

    def find_leads(
        self, tenant: Tenant, *, email: str | None, linkedin_url: str | None, client_id: str | None
    ) -> list[Lead]:
        """GET /api/find-lead: by email (case-insensitive) or linkedinUrl, optionally within a client."""
        table = self._tables[ENRICH]
        if email:
            ids = table.by_email.get((tenant.company_id, email.strip().lower()), {})
        elif linkedin_url:
            ids = table.by_linkedin.get((tenant.company_id, linkedin_url.strip()), {})
        else:
            raise MissingField("email or linkedinUrl is required")
        rows = sorted((table.by_id[i] for i in ids), key=lambda r: r.seq)
        return [r.data for r in rows if client_id is None or r.data.get("client_id") == client_id]

    # -- A4 bulk extraction ---------------------------------------------------------------------

    def list_bulk(
        self,
        tenant: Tenant,
        table: str,
        *,
        company_id: str | None,
        client_id: str | None,
        limit: int,
        next_token: str | None,
        fields: tuple[str, ...] | None,
    ) -> Page:
        """GET /api/enrich-leads/list and /api/source-leads/list (API key)."""
        if not company_id:
            raise MissingField("companyId is required")
        if company_id != tenant.company_id:
            raise InsufficientPermissions(
                "Access denied", details="companyId is not the API key owner's company"
            )
        self._check_limit(limit, BULK_MAX_LIMIT)
        after = decode_next_token(next_token) if next_token else None
        tbl = self._tables[table]
        if client_id is None or client_id in ("", "ALL", "DEFAULT"):
            index = tbl.by_company.get(company_id)
        else:
            index = tbl.by_client.get((company_id, client_id))
        return self._page(index, after, limit, fields)

    # -- admin ----------------------------------------------------------------------------------

    @_locked
    def seed(self, *, tenant_ref: str, client: str, n: int, table: str, start: int) -> dict[str, Any]:
        """Create `n` synthetic leads (emails lead{start+i}@example.com) in a client, creating it if needed."""
        if table not in TABLES:
            raise InvalidValue(f"table must be one of {list(TABLES)}")
        if n < 0 or start < 0:
            raise InvalidValue("n and start must be >= 0")
        tenant = self.tenant_by_ref(tenant_ref)
        try:
            slug = self.get_client(tenant, client)["client_id"]
        except NotFound:
            try:
                slug = self.get_client(tenant, slugify(client))["client_id"]
            except NotFound:
                slug = self.create_client(tenant, {"clientName": client})["client_id"]
        now = _iso(self.now())
        tbl = self._tables[table]
        rows = [self._new_row(tenant, _synthetic_lead(slug, start + i), now) for i in range(n)]
        for row in rows:
            tbl.add(row)
        self._persist.put_leads(table, ((r.seq, r.data) for r in rows))
        return {"client_id": slug, "created": n}

    @_locked
    def snapshot(self, *, company_id: str | None = None, client_id: str | None = None) -> dict[str, Any]:
        """The full truth, for GET /__admin/state."""

        def keep(d: dict[str, Any]) -> bool:
            return (company_id is None or d.get("company_id") == company_id) and (
                client_id is None or d.get("client_id") == client_id
            )

        clients = [c for cs in self._clients.values() for c in cs.values() if keep(c)]
        tenants = [dataclasses.asdict(t) for t in TENANTS if company_id is None or t.company_id == company_id]
        out: dict[str, Any] = {"tenants": tenants, "clients": clients}
        for table, key in ((ENRICH, "leads"), (SOURCE, "source_leads")):
            rows: Iterable[_Row] = self._tables[table].by_id.values()
            out[key] = sorted((r for r in rows if keep(r.data)), key=lambda r: r.seq)
            out[key] = [r.data for r in out[key]]
        return out

    def lead_count(self, table: str = ENRICH) -> int:
        return len(self._tables[table].by_id)


_FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Edsger",
          "Frances", "John", "Hedy", "Tim", "Katherine", "Guido")
_LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
         "Perlman", "Dijkstra", "Allen", "McCarthy", "Lamarr", "Berners-Lee", "Johnson", "van Rossum")
_COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
              "Cyberdyne", "Soylent", "Tyrell", "Wonka", "Aperture")
_TITLES = ("CEO", "CTO", "VP Sales", "Head of Growth", "RevOps Manager", "Account Executive",
           "Marketing Director", "Founder")
_QUALIFICATION = ("Hot", "Warm", "Cold")


def _synthetic_lead(client_id: str, i: int) -> dict[str, str]:
    """A deterministic, realistic lead; index arithmetic instead of an RNG keeps seeding fast."""
    first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST)) % len(_LAST)]
    company = _COMPANIES[(i * 7) % len(_COMPANIES)]
    domain = company.lower().replace(" ", "") + ".com"
    lead = {
        "client_id": client_id,
        "firstName": first,
        "lastName": last,
        "fullName": f"{first} {last}",
        "email": f"lead{i}@example.com",
        "title": _TITLES[(i * 3) % len(_TITLES)],
        "companyName": company,
        "companyDomain": domain,
        "companyUrl": f"https://{domain}",
        "linkedinUrl": f"https://www.linkedin.com/in/lead{i}",
        "status": "new",
        "source": "sandbox-seed",
    }
    if i % 3 == 0:
        lead["aiLeadScore"] = str(40 + (i * 13) % 60)
        lead["aiQualification"] = _QUALIFICATION[i % 3 if i % 9 else 1]
        lead["aiNextAction"] = "Send intro email"
    return lead


__all__ = [
    "DEMO_TENANT",
    "LEAD_FIELDS",
    "OTHER_TENANT",
    "LeadGeniusStore",
    "Page",
    "SandboxConfig",
    "Tenant",
    "check_lead_fields",
]
