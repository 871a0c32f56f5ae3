"""The thin HTTP layer of the LeadGenius sandbox (starlette), over `store.LeadGeniusStore`.

Every `/api` call goes through one pipeline: latency -> injected fault -> rate limit -> credential
-> store operation -> error mapping -> `X-RateLimit-*` headers -> stats. `/__admin/*` endpoints
(no auth, never limited, never faulted) let tests reset, seed, configure, inject faults and read
the full truth and the counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from etl.sandbox.leadgenius import tokens
from etl.sandbox.leadgenius.errors import (
    InvalidFormat,
    InvalidValue,
    MissingField,
    NotFound,
    QuirkError,
    RateLimited,
    SandboxError,
)
from etl.sandbox.leadgenius.faults import FaultPlan, FaultRule
from etl.sandbox.leadgenius.ratelimit import UNLIMITED_BUDGET, RateLimiter
from etl.sandbox.leadgenius.store import (
    BULK_DEFAULT_LIMIT,
    DEMO_TENANT,
    ENRICH,
    LEADS_DEFAULT_LIMIT,
    SOURCE,
    LeadGeniusStore,
    SandboxConfig,
    Tenant,
)

log = logging.getLogger("etl.sandbox.leadgenius")

Auth = Literal["bearer", "apikey", "none"]
QUIRK_NAMES = ("unknown_field", "empty_value", "null_value", "non_string_value", "punctuation_last_name", "batch_item")
_RAW_SEND = "leadgenius.raw_send"


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, headers=headers, media_type="application/json")


class Stats:
    """Counters for GET /__admin/stats; quirk 500s are kept apart from injected faults."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.total = 0
        self.requests: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.quirk_500: dict[str, int] = dict.fromkeys(QUIRK_NAMES, 0)
        self.injected: dict[str, int] = {"429": 0, "500": 0, "503": 0, "drop": 0, "slow": 0, "batch_keep": 0}
        self.silently_dropped = 0
        self.batch_delete_kept = 0
        self.batch_not_persisted = 0
        self.rate_limited = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "requests": {route: dict(by_status) for route, by_status in self.requests.items()},
            "quirk_500": dict(self.quirk_500),
            "injected": dict(self.injected),
            "silently_dropped": self.silently_dropped,
            "batch_not_persisted": self.batch_not_persisted,
            "batch_delete_kept": self.batch_delete_kept,
            "rate_limited": self.rate_limited,
        }


@dataclass
class Call:
    """What a handler gets: the request, its parsed JSON body and the resolved tenant."""

    request: Request
    query: QueryParams
    body: Any
    tenant: Tenant
    fault: FaultRule | None = None  # a fault that changes how the operation is done (batch_keep)

    def object_body(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise InvalidFormat("Request body must be a JSON object")
        return self.body


Handler = Callable[[Call], tuple[int, dict[str, Any]]]


class _DroppedResponse(Response):
    """Fallback drop for servers whose transport we cannot reach: promise a body, send half, die."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"success": tr', "more_body": True})
        raise ConnectionAbortedError("sandbox: injected drop")


class _QuietDrops(logging.Filter):
    """Keep uvicorn from logging our deliberate connection drops as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionAbortedError) or "sandbox: injected drop" not in str(exc)


_QUIET_DROPS = _QuietDrops()


class SandboxApp(Starlette):
    """Starlette that remembers the server's own `send` so the `drop` fault can close the socket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_RAW_SEND] = send
        await super().__call__(scope, receive, send)


class Runtime:
    """Store + faults + rate limiter + stats: everything one sandbox server holds."""

    def __init__(self, store: LeadGeniusStore, faults: list[FaultRule] | None = None) -> None:
        self.store = store
        self.faults = FaultPlan()
        self.limiter = RateLimiter()
        self.stats = Stats()
        # Rules given at start (CLI --faults) come back, with fresh counters and RNGs, on reset.
        self._started_faults = [dataclasses.replace(r) for r in faults or []]
        self.faults.rules = [dataclasses.replace(r) for r in self._started_faults]

    def reset(self) -> None:
        self.store.reset()
        self.faults.rules = [dataclasses.replace(r) for r in self._started_faults]
        self.limiter.clear()
        self.stats.clear()

    # -- the /api pipeline ------------------------------------------------------------------

    def route(self, method: str, template: str, auth: Auth, handler: Handler) -> Route:
        key = f"{method} {template}"

        async def endpoint(request: Request) -> Response:
            return await self.handle(request, method, template, key, auth, handler)

        return Route(template, endpoint, methods=[method], name=key)

    async def handle(
        self, request: Request, method: str, template: str, key: str, auth: Auth, handler: Handler
    ) -> Response:
        stats = self.stats
        stats.total += 1
        # Read the whole request first, as a real server does: a `slow` fault must still process
        # the request after the client has given up (uvicorn drops the body on disconnect).
        raw = b"" if request.method in ("GET", "HEAD") else await request.body()
        config = self.store.config
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000)

        fault = (
            self.faults.pick(method, template, request.url.path, request.query_params) if self.faults.rules else None
        )
        if fault is not None:
            stats.injected[fault.kind] += 1
            if fault.kind == "slow":
                await asyncio.sleep(fault.slow_ms / 1000)
            elif fault.kind == "batch_keep":
                pass  # the handler does part of the work and answers as if it did it all
            else:
                response = await self._inject(request, fault, auth)
                stats.requests[key]["drop" if fault.kind == "drop" else str(response.status_code)] += 1
                return response

        headers: dict[str, str] = {}
        try:
            if auth != "none":
                decision = self.limiter.check(
                    self._credential_key(request, auth),
                    limit=config.rate_limit_per_min,
                    window_s=config.rate_window_s,
                    now=self.store.now(),
                )
                headers = decision.headers()
                if not decision.allowed:
                    stats.rate_limited += 1
                    raise RateLimited(
                        "Rate limit exceeded",
                        details=f"{decision.limit} requests per {config.rate_window_s:g} s for this credential",
                    )
            tenant = self._tenant(request, auth)
            body = self._parse(raw)
            status, payload = handler(Call(request, request.query_params, body, tenant,
                                           fault if fault is not None and fault.kind == "batch_keep" else None))
        except QuirkError as exc:
            stats.quirk_500[exc.quirk] = stats.quirk_500.get(exc.quirk, 0) + 1
            status, payload = exc.status, exc.body()
        except SandboxError as exc:
            status, payload = exc.status, exc.body()
        except Exception as exc:  # a sandbox bug must still answer in the API's error shape
            log.exception("sandbox handler failed")
            status, payload = 500, {"success": False, "error": "Internal server error",
                                    "errorType": "internal_error", "details": repr(exc),
                                    "recommendation": "This is a sandbox bug; please report it."}
        stats.requests[key][str(status)] += 1
        return _json(payload, status, headers)

    async def _inject(self, request: Request, fault: FaultRule, auth: Auth) -> Response:
        """An injected fault, before any work: never changes state (nor spends rate budget)."""
        if fault.kind == "drop":
            return await self._drop(request)
        config = self.store.config
        budget: dict[str, str] = {}
        if auth != "none":
            budget = self.limiter.peek(self._credential_key(request, auth), limit=config.rate_limit_per_min,
                                       window_s=config.rate_window_s, now=self.store.now()).headers()
            budget.pop("Retry-After", None)
        if fault.kind == "429":
            limit = config.rate_limit_per_min or UNLIMITED_BUDGET
            reset = math.ceil(self.store.now() + fault.retry_after)
            err: SandboxError = RateLimited("Rate limit exceeded", details="Injected by the sandbox")
            headers = {"Retry-After": str(fault.retry_after), "X-RateLimit-Limit": str(limit),
                       "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
            return _json(err.body(), 429, headers)
        if fault.kind == "503":
            body = SandboxError("Service unavailable", details="Injected by the sandbox",
                                recommendation="Wait and retry.").body()
            return _json(body, 503, budget)
        return _json(SandboxError("Internal server error", details="Injected by the sandbox").body(), 500, budget)

    async def _drop(self, request: Request) -> Response:
        """Close the TCP connection without a response (the client sees a transport error).

        With uvicorn, the raw `send` is a bound method of the request cycle, which holds the
        asyncio transport; closing it makes httpx raise RemoteProtocolError ("Server disconnected
        without sending a response") and requests raise ConnectionError.
        """
        send = request.scope.get(_RAW_SEND)
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None or not hasattr(transport, "close"):
            return _DroppedResponse()
        transport.close()
        for _ in range(3):  # let connection_lost run, so uvicorn does not try to answer
            await asyncio.sleep(0)
        return Response(status_code=204)

    @staticmethod
    def _credential_key(request: Request, auth: Auth) -> str:
        """The rate-limit bucket: the token owner's sub, or the API key."""
        if auth == "apikey":
            return "key:" + request.headers.get("x-api-key", "")
        _scheme, _, token = request.headers.get("authorization", "").partition(" ")
        payload = tokens.decode_unverified(token.strip()) if token else None
        if payload and isinstance(payload.get("sub"), str):
            return "user:" + str(payload["sub"])
        return "anon:" + (request.client.host if request.client else "?")

    def _tenant(self, request: Request, auth: Auth) -> Tenant:
        if auth == "bearer":
            return self.store.resolve_bearer(request.headers.get("authorization"))
        if auth == "apikey":
            return self.store.resolve_api_key(request.headers.get("x-api-key"), request.headers.get("x-user-id"))
        return DEMO_TENANT  # unauthenticated calls (auth) never use it

    @staticmethod
    async def _body(request: Request) -> Any:
        if request.method in ("GET", "HEAD"):
            return None
        return Runtime._parse(await request.body())

    @staticmethod
    def _parse(raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise InvalidFormat("Request body is not valid JSON") from None


# --- query helpers -------------------------------------------------------------------------------


def _int_param(query: QueryParams, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidFormat(f"{name} must be an integer", details=f"{name}={raw!r}") from None


def _fields_param(query: QueryParams) -> tuple[str, ...] | None:
    raw = query.get("fields")
    if not raw:
        return None
    return tuple(f.strip() for f in raw.split(",") if f.strip())


# --- /api handlers -------------------------------------------------------------------------------


def _api_routes(rt: Runtime) -> list[Route]:
    store = rt.store

    def auth(call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body if isinstance(call.body, dict) else {}
        username = body.get("username", body.get("email"))
        return 200, {"success": True, "tokens": store.authenticate(username, body.get("password"))}

    def refresh(call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body if isinstance(call.body, dict) else {}
        return 200, {"success": True, "tokens": store.refresh(body.get("refreshToken"))}

    def company(call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"success": True, "company": store.get_company(call.tenant)}

    def get_clients(call: Call) -> tuple[int, dict[str, Any]]:
        key = call.query.get("clientId") or call.query.get("id")
        if key:
            return 200, {"success": True, "client": store.get_client(call.tenant, key)}
        return 200, {"success": True, "clients": store.list_clients(call.tenant)}

    def post_clients(call: Call) -> tuple[int, dict[str, Any]]:
        return 201, {"success": True, "client": store.create_client(call.tenant, call.object_body())}

    def put_clients(call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"success": True, "client": store.update_client(call.tenant, call.object_body())}

    def delete_clients(call: Call) -> tuple[int, dict[str, Any]]:
        client_uuid = call.query.get("id")
        purge = call.query.get("purge", "").lower() in ("true", "1", "yes")
        purged = store.delete_client(call.tenant, client_uuid, purge=purge)
        return 200, {"success": True, "id": client_uuid, "purgedLeads": purged}

    def get_leads(call: Call) -> tuple[int, dict[str, Any]]:
        limit = _int_param(call.query, "limit", LEADS_DEFAULT_LIMIT)
        page = store.list_leads(call.tenant, call.query.get("client_id"), limit, call.query.get("nextToken"))
        # quirk 6: `total` is the size of this page, not of the collection
        return 200, {"success": True, "leads": page.items, "total": len(page.items), "nextToken": page.next_token}

    def post_leads(call: Call) -> tuple[int, dict[str, Any]]:
        body = call.object_body()
        if "leads" in body:
            created, stored = store.batch_create_leads(call.tenant, body["leads"])
            rt.stats.batch_not_persisted += created - stored
            return 201, {"success": True, "created": created, "skipped": []}
        lead, was_stored = store.create_lead(call.tenant, body)
        if not was_stored:
            rt.stats.silently_dropped += 1
        return 201, {"success": True, "lead": lead}

    def put_leads(call: Call) -> tuple[int, dict[str, Any]]:
        body = call.object_body()
        if "leads" in body:
            return 200, {"success": True, "updated": store.batch_update_leads(call.tenant, body["leads"])}
        return 200, {"success": True, "lead": store.update_lead(call.tenant, body)}

    def delete_leads(call: Call) -> tuple[int, dict[str, Any]]:
        lead_id = call.query.get("id")
        if lead_id:
            store.delete_lead(call.tenant, lead_id)
            return 200, {"success": True}
        if isinstance(call.body, dict) and "ids" in call.body:
            ids = call.body["ids"]
            if call.fault is not None and isinstance(ids, list):
                # The lie: the full count, but some of the leads stay (batch_keep fault).
                kept = call.fault.kept(ids)
                deleted = store.batch_delete_leads(call.tenant, [i for i in ids if i not in kept])
                rt.stats.batch_delete_kept += len(kept)
                return 200, {"success": True, "deleted": deleted + len(kept)}
            return 200, {"success": True, "deleted": store.batch_delete_leads(call.tenant, ids)}
        raise MissingField("id is required", details="Pass ?id=<lead id> or a body {\"ids\": [...]}")

    def find_lead(call: Call) -> tuple[int, dict[str, Any]]:
        q = call.query
        leads = store.find_leads(call.tenant, email=q.get("email"), linkedin_url=q.get("linkedinUrl"),
                                 client_id=q.get("client_id") or None)
        return 200, {"success": True, "leads": leads}

    def get_enrich_lead(call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"success": True, "lead": store.get_lead(call.tenant, call.request.path_params["id"])}

    def put_enrich_lead(call: Call) -> tuple[int, dict[str, Any]]:
        lead = store.update_lead(call.tenant, call.object_body(), lead_id=call.request.path_params["id"])
        return 200, {"success": True, "lead": lead}

    def bulk(table: str) -> Handler:
        def handler(call: Call) -> tuple[int, dict[str, Any]]:
            q = call.query
            page = store.list_bulk(
                call.tenant, table, company_id=q.get("companyId"), client_id=q.get("clientId"),
                limit=_int_param(q, "limit", BULK_DEFAULT_LIMIT), next_token=q.get("nextToken"),
                fields=_fields_param(q),
            )
            return 200, {"success": True, "items": page.items, "count": len(page.items),
                         "nextToken": page.next_token}

        return handler

    return [
        rt.route("POST", "/api/auth", "none", auth),
        rt.route("POST", "/api/auth/refresh", "none", refresh),
        rt.route("GET", "/api/company", "bearer", company),
        rt.route("GET", "/api/clients", "bearer", get_clients),
        rt.route("POST", "/api/clients", "bearer", post_clients),
        rt.route("PUT", "/api/clients", "bearer", put_clients),
        rt.route("DELETE", "/api/clients", "bearer", delete_clients),
        rt.route("GET", "/api/leads", "bearer", get_leads),
        rt.route("POST", "/api/leads", "bearer", post_leads),
        rt.route("PUT", "/api/leads", "bearer", put_leads),
        rt.route("DELETE", "/api/leads", "bearer", delete_leads),
        rt.route("GET", "/api/find-lead", "bearer", find_lead),
        rt.route("GET", "/api/enrich-leads/list", "apikey", bulk(ENRICH)),
        rt.route("GET", "/api/source-leads/list", "apikey", bulk(SOURCE)),
        rt.route("GET", "/api/enrich-leads/{id}", "bearer", get_enrich_lead),
        rt.route("PUT", "/api/enrich-leads/{id}", "bearer", put_enrich_lead),
    ]


# --- /__admin ------------------------------------------------------------------------------------


def _admin_routes(rt: Runtime) -> list[Route]:
    store = rt.store

    def admin(method: str, path: str, fn: Callable[[Request, Any], Awaitable[Any]]) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                body = await Runtime._body(request)
                return _json(await fn(request, body))
            except SandboxError as exc:
                return _json(exc.body(), exc.status)
            except ValueError as exc:
                return _json(InvalidValue(str(exc)).body(), 400)

        return Route(path, endpoint, methods=[method])

    def obj(body: Any) -> dict[str, Any]:
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise InvalidFormat("Body must be a JSON object")
        return body

    async def reset(request: Request, body: Any) -> Any:
        rt.reset()
        return {"success": True, "config": store.config.to_dict()}

    async def seed(request: Request, body: Any) -> Any:
        b = obj(body)
        try:
            n, start = int(b.get("n", 100)), int(b.get("start", 0))
        except (TypeError, ValueError):
            raise InvalidValue("n and start must be integers") from None
        return store.seed(tenant_ref=str(b.get("tenant", DEMO_TENANT.email)), client=str(b.get("client", "Acme Corp")),
                          n=n, table=str(b.get("table", ENRICH)), start=start)

    async def get_config(request: Request, body: Any) -> Any:
        return store.config.to_dict()

    async def put_config(request: Request, body: Any) -> Any:
        return store.set_config(obj(body)).to_dict()

    async def get_faults(request: Request, body: Any) -> Any:
        return {"rules": [r.to_dict() for r in rt.faults.rules]}

    async def post_faults(request: Request, body: Any) -> Any:
        rule = FaultRule.from_json(body)
        rt.faults.add(rule)
        return {"success": True, "rule": rule.to_dict(), "rules": [r.to_dict() for r in rt.faults.rules]}

    async def delete_faults(request: Request, body: Any) -> Any:
        rt.faults.clear()
        return {"success": True, "rules": []}

    async def get_stats(request: Request, body: Any) -> Any:
        return rt.stats.to_dict()

    async def get_state(request: Request, body: Any) -> Any:
        q = request.query_params
        return store.snapshot(company_id=q.get("company_id") or None, client_id=q.get("client_id") or None)

    async def clock(request: Request, body: Any) -> Any:
        b = obj(body)
        try:
            store.clock_offset += float(b.get("advance", 0))
        except (TypeError, ValueError):
            raise InvalidValue("advance must be a number of seconds") from None
        return {"success": True, "offset": store.clock_offset, "now": store.now()}

    return [
        admin("POST", "/__admin/reset", reset),
        admin("POST", "/__admin/seed", seed),
        admin("GET", "/__admin/config", get_config),
        admin("PUT", "/__admin/config", put_config),
        admin("GET", "/__admin/faults", get_faults),
        admin("POST", "/__admin/faults", post_faults),
        admin("DELETE", "/__admin/faults", delete_faults),
        admin("GET", "/__admin/stats", get_stats),
        admin("GET", "/__admin/state", get_state),
        admin("POST", "/__admin/clock", clock),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        err = SandboxError("Method not allowed", details=f"{request.method} {request.url.path}",
                           recommendation="Check the API reference.")
        return _json(err.body(), 405)
    return _json(NotFound("Not found", details=f"No route {request.method} {request.url.path}").body(), 404)


def create_app(config: SandboxConfig | None = None, *, faults: list[FaultRule] | None = None) -> Starlette:
    """A LeadGenius API sandbox; `app.state.sandbox` is its store, `app.state.runtime` the rest.

    `faults` are rules active from the start and restored by POST /__admin/reset.
    """
    runtime = Runtime(LeadGeniusStore(config), faults)
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)  # idempotent: same filter object
    app = SandboxApp(
        routes=[*_admin_routes(runtime), *_api_routes(runtime)],
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.state.sandbox = runtime.store
    app.state.runtime = runtime
    return app


__all__ = ["Runtime", "SandboxApp", "Stats", "create_app"]
