"""The HubSpot CRM sandbox: a thin Starlette layer over `HubSpotStore`, speaking the endpoints the
official `hubspot-api-client` (v12) calls, with HubSpot's error bodies, rate limits and headers.

Admin endpoints under `/__admin/` (no auth, never limited or faulted) let tests seed data, inject
faults and read the whole truth back. See `create_app`.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etl.sandbox.hubspot.store import HubSpotError, HubSpotStore

SANDBOX_TOKEN = "pat-sandbox-0000-hubspot-etl"  # the private-app token the sandbox accepts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# route name -> (method, path pattern); names are what /__admin/stats and fault "route" use
ROUTES: dict[str, tuple[str, re.Pattern[str]]] = {
    "contacts_page": ("GET", re.compile(r"^/crm/v3/objects/contacts/?$")),
    "contacts_search": ("POST", re.compile(r"^/crm/v3/objects/contacts/search/?$")),
    "contacts_batch_update": ("POST", re.compile(r"^/crm/v3/objects/contacts/batch/update/?$")),
    "contacts_batch_read": ("POST", re.compile(r"^/crm/v3/objects/contacts/batch/read/?$")),
    "contacts_merge": ("POST", re.compile(r"^/crm/v3/objects/contacts/merge/?$")),
    "contacts_archive": ("DELETE", re.compile(r"^/crm/v3/objects/contacts/\d+/?$")),
    "companies_search": ("POST", re.compile(r"^/crm/v3/objects/companies/search/?$")),
    "companies_batch_read": ("POST", re.compile(r"^/crm/v3/objects/companies/batch/read/?$")),
    "companies_batch_update": ("POST", re.compile(r"^/crm/v3/objects/companies/batch/update/?$")),
    "assoc_batch_read": ("POST", re.compile(r"^/crm/v4/associations/[^/]+/[^/]+/batch/read/?$")),
    "assoc_put": ("PUT", re.compile(r"^/crm/v4/objects/[^/]+/\d+/associations/[^/]+/\d+/?$")),
}
# HubSpot's search limit is per token across every object's search endpoint: one bucket.
SEARCH_ROUTES = frozenset({"contacts_search", "companies_search"})


def route_name(method: str, path: str) -> str:
    for name, (m, pattern) in ROUTES.items():
        if m == method and pattern.match(path):
            return name
    return f"{method} {path}"


@dataclass
class Config:
    rate_limit_per_10s: int = 100  # HubSpot private apps (free/starter): 100 per 10 s rolling; 0 = unlimited
    rate_window_ms: int = 10_000  # that window (HubSpot's Interval-Milliseconds); shorter keeps tests quick
    search_per_s: int = 5  # the search endpoints' own per-token limit; 0 = unlimited
    latency_ms: int = 0
    retry_after_s: int = 1  # Retry-After sent with fault 429/503s (whole seconds, as HTTP wants)
    shuffle_ties: int = 0  # 1: search results tied on every sort key change order between requests
    index_lag_ms: int = 0  # search sees each write this late (lastmodifieddate keeps the true time)
    clock_offset_s: int = 0  # HubSpot's clock minus ours: record timestamps and the Date header use it
    daily_limit: int = 250_000  # private apps, free/starter: requests per day (non-search); 0 = unlimited


@dataclass
class Fault:
    kind: str  # "429" | "500" | "503" | "drop"
    route: str | None
    remaining: int | None  # "next N" faults
    probability: float
    rng: random.Random

    def fires(self, route: str, path: str) -> bool:
        if self.route and self.route not in (route, path) and not path.startswith(self.route):
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        return self.rng.random() < self.probability


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error shape."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


class Sandbox:
    """Everything the HTTP layer keeps besides the CRM data: config, limits, faults, stats."""

    def __init__(self, seed: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seed = seed
        self.clock = clock
        self.store = HubSpotStore(clock=lambda: time.time() + self.config.clock_offset_s)
        self.reset()

    def reset(self) -> None:
        self.config = Config()
        self.store.reset()
        self.faults: list[Fault] = []
        self.windows: dict[str, deque[float]] = defaultdict(deque)  # token -> request times (10 s)
        self.search_windows: dict[str, deque[float]] = defaultdict(deque)  # token -> search times (1 s)
        self.daily: Counter[str] = Counter()  # token -> non-search requests today (the sandbox's day: since reset)
        self.not_before: dict[tuple[str, str], float] = {}  # (token, route) -> earliest polite retry
        self.requests: dict[str, Counter[str]] = defaultdict(Counter)
        self.retry_after_violations = 0
        self.faults_fired: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": {route: dict(c) for route, c in self.requests.items()},
            "total": sum(sum(c.values()) for c in self.requests.values()),
            "retry_after_violations": self.retry_after_violations,
            "faults_fired": dict(self.faults_fired),
        }

    def take_fault(self, route: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.fires(route, path):
                self.faults_fired[fault.kind] += 1
                return fault
        return None

    def rate_limit(self, token: str, route: str) -> tuple[dict[str, str], JSONResponse | None]:
        """Count this request against the token's windows: headers to send, or a 429 to answer.

        As HubSpot: the search endpoints have only their own per-second limit and answer without
        any X-HubSpot-RateLimit-* header; every other route counts in the rolling 10-s window (and
        the day) and says so in its headers, 429 included."""
        now = self.clock()
        cfg = self.config
        if route in SEARCH_ROUTES:
            if cfg.search_per_s:
                sw = self.search_windows[token]
                while sw and sw[0] <= now - 1.0:
                    sw.popleft()
                if len(sw) >= cfg.search_per_s:
                    return {}, self._too_many(token, route, 1, "SECONDLY", "You have reached your secondly limit.")
                sw.append(now)
            return {}, None
        headers: dict[str, str] = {}
        if cfg.daily_limit:
            headers["X-HubSpot-RateLimit-Daily"] = str(cfg.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, cfg.daily_limit - self.daily[token]))
            if self.daily[token] >= cfg.daily_limit:
                resp = self._too_many(token, route, 60, "DAILY", "You have reached your daily limit.")
                resp.headers.update(headers)
                return headers, resp
        if cfg.rate_limit_per_10s:
            w, window_s = self.windows[token], cfg.rate_window_ms / 1000
            while w and w[0] <= now - window_s:
                w.popleft()
            headers |= {
                "X-HubSpot-RateLimit-Max": str(cfg.rate_limit_per_10s),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_window_ms),
                "X-HubSpot-RateLimit-Secondly": str(max(1, cfg.rate_limit_per_10s // 10)),
            }
            if len(w) >= cfg.rate_limit_per_10s:
                wait = max(1, math.ceil(w[0] + window_s - now))
                headers["X-HubSpot-RateLimit-Remaining"] = "0"
                headers["X-HubSpot-RateLimit-Secondly-Remaining"] = "0"
                resp = self._too_many(
                    token, route, wait, "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit."
                )
                resp.headers.update(headers)
                return headers, resp
            w.append(now)
            recent = sum(1 for t in w if t > now - 1.0)
            headers["X-HubSpot-RateLimit-Remaining"] = str(cfg.rate_limit_per_10s - len(w))
            headers["X-HubSpot-RateLimit-Secondly-Remaining"] = str(max(0, cfg.rate_limit_per_10s // 10 - recent))
        if cfg.daily_limit:
            self.daily[token] += 1
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, cfg.daily_limit - self.daily[token]))
        return headers, None

    def _too_many(self, token: str, route: str, wait: int, policy: str, message: str) -> JSONResponse:
        self.not_before[(token, route)] = self.clock() + wait - 0.05  # a little slack for clock granularity
        body = error_body("RATE_LIMITS", message, errorType="RATE_LIMIT", policyName=policy)
        return JSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})


class HubSpotMiddleware:
    """Faults, then auth, then rate limits, then latency — before any handler runs. Admin is exempt."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sb = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__admin"):
            await self.app(scope, receive, send)
            return
        sb = self.sb
        method, path = scope["method"], scope["path"]
        route = route_name(method, path)
        token = _bearer(scope)
        status_box: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box.append(int(message["status"]))
                sb.requests[route][str(message["status"])] += 1
            await send(message)

        key = (token or "", route)
        if key in sb.not_before and sb.clock() < sb.not_before[key]:
            sb.retry_after_violations += 1  # the client came back before the Retry-After it was given
        sb.not_before.pop(key, None)

        fault = sb.take_fault(route, path)
        if fault is not None:
            if fault.kind == "drop":
                # start a response, then hang up: the client sees a broken connection, not a status
                sb.requests[route]["drop"] += 1
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
                await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
                raise ConnectionAbortedError("sandbox fault: dropped connection")
            status = int(fault.kind)
            headers = {}
            if status in (429, 503):
                wait = sb.config.retry_after_s
                headers["Retry-After"] = str(wait)
                sb.not_before[key] = sb.clock() + wait - 0.05
            category = "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR"
            message = (
                "You have reached your ten_secondly_rolling limit."
                if status == 429
                else "Internal error (sandbox fault)."
            )
            extra = {"policyName": "TEN_SECONDLY_ROLLING", "errorType": "RATE_LIMIT"} if status == 429 else {}
            await JSONResponse(error_body(category, message, **extra), status_code=status, headers=headers)(
                scope, receive, counting_send
            )
            return

        if token != SANDBOX_TOKEN:
            body = error_body(
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
            await JSONResponse(body, status_code=401)(scope, receive, counting_send)
            return

        headers, refusal = sb.rate_limit(token, route)
        if refusal is not None:
            await refusal(scope, receive, counting_send)
            return
        if sb.config.latency_ms:
            await anyio.sleep(sb.config.latency_ms / 1000)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                    # HubSpot's clock, which a client must use for its marks (not its own)
                    (b"date", formatdate(time.time() + sb.config.clock_offset_s, usegmt=True).encode()),
                ]
            await counting_send(message)

        await self.app(scope, receive, send_with_headers)


def _bearer(scope: Scope) -> str | None:
    for k, v in scope.get("headers", []):
        if k == b"authorization":
            text = bytes(v).decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
            return None
    return None


def _answer(call: Callable[[], Any]) -> Response:
    """Run a store operation; map `HubSpotError` to HubSpot's error body."""
    try:
        out = call()
    except HubSpotError as exc:
        return JSONResponse(error_body(exc.category, exc.message, **exc.extra), status_code=exc.status)
    if isinstance(out, tuple):
        status, body = out
        return JSONResponse(body, status_code=status)
    return JSONResponse(out)


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1.") from exc


def create_app(seed: int = 0, *, contacts: int = 0) -> Starlette:
    """The sandbox app. `seed` seeds its random choices; `contacts` > 0 pre-seeds that many contacts."""
    sb = Sandbox(seed)
    store = sb.store

    # --- the HubSpot API ---------------------------------------------------------------------

    async def list_contacts(request: Request) -> Response:
        q = request.query_params
        base = f"{request.url.scheme}://{request.url.netloc}"

        def call() -> Any:
            try:
                limit = int(q.get("limit", "10"))
            except ValueError as exc:
                raise HubSpotError(400, "VALIDATION_ERROR", "limit must be a number.") from exc
            return store.list_contacts(
                limit=limit,
                after=q.get("after"),
                properties=_multi(q.getlist("properties")),
                associations=_multi(q.getlist("associations")),
                archived=q.get("archived", "false").lower() == "true",
                base_url=base,
            )

        return _answer(call)

    async def search(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.search_contacts(body, shuffle_ties=bool(sb.config.shuffle_ties)))

    async def companies_read(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.read_companies(body))

    async def assoc_read(request: Request) -> Response:
        body = await request.json()
        p = request.path_params
        return _answer(lambda: store.read_associations(p["from_type"], p["to_type"], body))

    async def contacts_update(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.update_contacts(body))

    async def contacts_read(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.read_contacts(body))

    async def contacts_merge(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.merge(body.get("primaryObjectId", ""), body.get("objectIdToMerge", "")))

    async def contact_archive(request: Request) -> Response:
        contact_id = request.path_params["contact_id"]
        try:
            store.archive_one(contact_id)
        except HubSpotError as exc:
            return JSONResponse(error_body(exc.category, exc.message), status_code=exc.status)
        return Response(status_code=204)

    async def companies_search(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.search_companies(body))

    async def companies_update(request: Request) -> Response:
        body = await request.json()
        return _answer(lambda: store.update_companies(body))

    async def assoc_put(request: Request) -> Response:
        """v4 `basic_api.create`: labels for one contact -> company pair; the Primary label (typeId 1)
        makes the company the contact's primary, bumping nothing."""
        p = request.path_params
        body = await request.json()
        if {p["from_type"].lower(), p["to_type"].lower()} != {"contacts", "companies"} and (
            p["from_type"].lower(), p["to_type"].lower()
        ) != ("contact", "company"):
            return JSONResponse(error_body("VALIDATION_ERROR", "Only contact -> company associations here."), 400)
        type_ids = {int(spec.get("associationTypeId", 0)) for spec in body or []}

        def call() -> Any:
            if 1 in type_ids:
                store.set_primary(p["from_id"], p["to_id"])
            return {"fromObjectTypeId": "0-1", "fromObjectId": int(p["from_id"]), "toObjectTypeId": "0-2",
                    "toObjectId": int(p["to_id"]),
                    "labels": ["Primary" if t == 1 else None for t in sorted(type_ids)]}

        return _answer(lambda: (201, call()))

    # --- admin -----------------------------------------------------------------------------

    async def admin_reset(request: Request) -> Response:
        sb.reset()
        return JSONResponse({"ok": True})

    async def admin_seed(request: Request) -> Response:
        body = await _json(request)
        summary = store.seed(
            contacts=int(body.get("contacts", 100)),
            companies=None if body.get("companies") is None else int(body["companies"]),
            seed=int(body.get("seed", sb.seed)),
            adversarial=bool(body.get("adversarial", True)),
        )
        return JSONResponse(summary)

    async def admin_state(request: Request) -> Response:
        return JSONResponse(store.state())

    async def admin_touch(request: Request) -> Response:
        body = await _json(request)
        ids = store.touch(
            ids=body.get("ids"),
            n=body.get("n"),
            seed=int(body.get("seed", sb.seed)),
            group=body.get("group"),
            change=bool(body.get("change", True)),
        )
        return JSONResponse({"ids": ids})

    async def admin_contacts(request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"ids": store.create_contacts(body.get("inputs") or [])})

    async def admin_companies(request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"ids": store.create_companies(body.get("inputs") or [])})

    async def admin_delete_companies(request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"ids": store.delete_companies(body.get("ids") or [])})

    async def admin_archive(request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"ids": store.archive(body.get("ids") or [])})

    async def admin_rename_companies(request: Request) -> Response:
        """{"inputs": [{"id", "properties": {"name"?, "domain"?}}]}: bumps only the companies."""
        body = await _json(request)
        return _answer(lambda: store.update_companies({"inputs": body.get("inputs") or []}))

    async def admin_primary(request: Request) -> Response:
        """{"switches": [{"contact", "company"}]}: a primary association switch, which bumps nothing."""
        body = await _json(request)

        def call() -> Any:
            for item in body.get("switches") or []:
                store.set_primary(item["contact"], item["company"])
            return {"switched": len(body.get("switches") or [])}

        return _answer(call)

    async def admin_merge(request: Request) -> Response:
        """{"pairs": [[survivor, merged-away], ...]}."""
        body = await _json(request)
        return _answer(lambda: {"survivors": [store.merge(a, b) for a, b in body.get("pairs") or []]})

    async def admin_faults(request: Request) -> Response:
        if request.method == "DELETE":
            sb.faults.clear()
            return JSONResponse({"faults": 0})
        body = await _json(request)
        kind = str(body.get("kind", "500"))
        if kind not in ("429", "500", "502", "503", "504", "drop"):
            return JSONResponse({"error": f"unknown fault kind {kind!r}"}, status_code=400)
        nxt = body.get("next")
        sb.faults.append(
            Fault(
                kind=kind,
                route=body.get("route"),
                remaining=None if nxt is None else int(nxt),
                probability=float(body.get("probability", 1.0 if nxt is None else 0.0)),
                rng=random.Random(int(body.get("seed", sb.seed))),
            )
        )
        return JSONResponse({"faults": len(sb.faults)})

    async def admin_stats(request: Request) -> Response:
        return JSONResponse(sb.stats())

    async def admin_config(request: Request) -> Response:
        if request.method == "PUT":
            body = await _json(request)
            for key, value in body.items():
                if not hasattr(sb.config, key):
                    return JSONResponse({"error": f"unknown config key {key!r}"}, status_code=400)
                setattr(sb.config, key, int(value))
            store.index_lag_ms = sb.config.index_lag_ms
        return JSONResponse(asdict(sb.config))

    routes = [
        Route("/crm/v3/objects/contacts", list_contacts, methods=["GET"]),
        Route("/crm/v3/objects/contacts/search", search, methods=["POST"]),
        Route("/crm/v3/objects/contacts/batch/update", contacts_update, methods=["POST"]),
        Route("/crm/v3/objects/contacts/batch/read", contacts_read, methods=["POST"]),
        Route("/crm/v3/objects/contacts/merge", contacts_merge, methods=["POST"]),
        Route("/crm/v3/objects/contacts/{contact_id:int}", contact_archive, methods=["DELETE"]),
        Route("/crm/v3/objects/companies/search", companies_search, methods=["POST"]),
        Route("/crm/v3/objects/companies/batch/read", companies_read, methods=["POST"]),
        Route("/crm/v3/objects/companies/batch/update", companies_update, methods=["POST"]),
        Route("/crm/v4/associations/{from_type}/{to_type}/batch/read", assoc_read, methods=["POST"]),
        Route("/crm/v4/objects/{from_type}/{from_id:int}/associations/{to_type}/{to_id:int}", assoc_put,
              methods=["PUT"]),
        Route("/__admin/reset", admin_reset, methods=["POST"]),
        Route("/__admin/seed", admin_seed, methods=["POST"]),
        Route("/__admin/state", admin_state, methods=["GET"]),
        Route("/__admin/touch", admin_touch, methods=["POST"]),
        Route("/__admin/contacts", admin_contacts, methods=["POST"]),
        Route("/__admin/companies", admin_companies, methods=["POST"]),
        Route("/__admin/companies/delete", admin_delete_companies, methods=["POST"]),
        Route("/__admin/archive", admin_archive, methods=["POST"]),
        Route("/__admin/companies/rename", admin_rename_companies, methods=["POST"]),
        Route("/__admin/primary", admin_primary, methods=["POST"]),
        Route("/__admin/merge", admin_merge, methods=["POST"]),
        Route("/__admin/faults", admin_faults, methods=["POST", "DELETE"]),
        Route("/__admin/stats", admin_stats, methods=["GET"]),
        Route("/__admin/config", admin_config, methods=["GET", "PUT"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse(error_body("OBJECT_NOT_FOUND", f"No route for {request.method} {request.url.path}."), 404)

    async def bad_json(request: Request, exc: Exception) -> Response:
        return JSONResponse(error_body("VALIDATION_ERROR", "Invalid input JSON on line 1."), 400)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(HubSpotMiddleware, sandbox=sb)],
        exception_handlers={404: not_found, 405: not_found, json.JSONDecodeError: bad_json},
    )
    app.state.sandbox = sb
    app.state.sends_date = True  # its own Date header (HubSpot's clock): the server must not add one
    if contacts:
        store.seed(contacts=contacts, seed=seed)
    return app


def _multi(values: list[str]) -> list[str]:
    """`properties=a&properties=b` (the client's "multi" format) or `properties=a,b` (HubSpot accepts both)."""
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out
