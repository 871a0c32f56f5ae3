"""The LeadScraper API sandbox (seed 004): `GET /v1/leads` and `GET /v1/leads/{id}` over a
`LeadStore`, with Bearer keys, the per-hour budget and `X-RateLimit-*` headers, 429s whose body
says `error.retry_after`, and injected faults.

Admin endpoints under `/__admin/` (no auth, never limited or faulted):
  POST /__admin/reset            config back to the started one, no leads, no faults, zeroed stats
  PUT  /__admin/config           {"limit": N, "window_s": S, "latency_ms": M} (window_s: the test knob
                                 for a short "hour")
  POST /__admin/seed             {"n": N, "seed": S, "jobs": J, "start": ISO}: messy leads
  POST /__admin/leads            {"leads": [{...}, ...]}: add leads (id / created_at filled when absent)
  POST /__admin/faults           {"kind": "429|500|503|drop|repeat_cursor", "route": "list|detail",
                                  "next": N | "probability": P}
  GET  /__admin/stats            requests by route and status, 429s sent, the most requests counted in
                                 one window (the budget honoured or not)
  GET  /__admin/state            every lead
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from etl.sandbox.leadgenius.ratelimit import RateLimiter
from etl.sandbox.leadscraper.store import ApiProblem, LeadStore, parse_iso

SANDBOX_KEY = "ls_sandbox_4f1c2e9a7b3d5c8e"  # a starter-plan key
READONLY_KEY = "ls_sandbox_noscope_0000"  # a key without the read scope: 403


@dataclass(frozen=True)
class Config:
    limit: int = 1000  # requests per window (starter plan); 0 = unlimited
    window_s: float = 3600.0  # the seed's window is an hour; tests shorten it
    latency_ms: float = 0.0


@dataclass
class Fault:
    kind: str
    route: str | None
    remaining: int | None
    probability: float

    def fires(self, route: str, rng: random.Random) -> bool:
        if self.route and self.route != route:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        return rng.random() < self.probability


class Sandbox:
    def __init__(self, config: Config, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.started_config = config
        self.config = config
        self.store = LeadStore()
        self.limiter = RateLimiter()
        self.faults: list[Fault] = []
        self.rng = random.Random(seed)
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.config = self.started_config
        self.store.clear()
        self.limiter.clear()
        self.faults = []
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.sent_429 = 0
        self.windows: Counter[int] = Counter()  # window index -> requests counted (allowed)

    def stats(self) -> dict[str, Any]:
        return {
            "by_route": dict(self.by_route), "by_status": dict(self.by_status), "sent_429": self.sent_429,
            "max_in_one_window": max(self.windows.values(), default=0), "config": asdict(self.config),
        }

    def take_fault(self, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.fires(route, self.rng):
                return fault
        return None


def create_app(config: Config | None = None, *, seed: int = 0, leads: int = 0) -> Starlette:
    """The sandbox app; `leads` > 0 pre-seeds that many messy leads."""
    sb = Sandbox(config or Config(), seed=seed)
    if leads:
        sb.store.seed(leads, seed=seed)

    def problem(exc: ApiProblem, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    async def guarded(request: Request, route: str, call: Callable[[], Any]) -> Response:
        sb.by_route[route] += 1
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        response = _guarded(request, route, key, call)
        sb.by_status[str(response.status_code)] += 1
        if sb.config.latency_ms:
            await anyio.sleep(sb.config.latency_ms / 1000)
        return response

    def _guarded(request: Request, route: str, key: str, call: Callable[[], Any]) -> Response:
        if not key:
            return problem(ApiProblem(401, "unauthorized", "Missing API key"))
        if key not in (SANDBOX_KEY, READONLY_KEY):
            return problem(ApiProblem(401, "unauthorized", "Invalid API key"))
        now = sb.clock()
        decision = sb.limiter.check(key, limit=sb.config.limit, window_s=sb.config.window_s, now=now)
        headers = {k: v for k, v in decision.headers().items() if k != "Retry-After"}
        if not decision.allowed:
            sb.sent_429 += 1
            body = {"error": {"code": "rate_limit_exceeded",
                              "message": f"Rate limit exceeded. Retry after {decision.retry_after} seconds.",
                              "retry_after": decision.retry_after}}
            return JSONResponse(body, status_code=429, headers=headers)
        sb.windows[int(decision.reset)] += 1
        if key == READONLY_KEY:
            return problem(ApiProblem(403, "forbidden", "This API key lacks the read scope"), headers)
        fault = sb.take_fault(route)
        repeat = False
        if fault is not None:
            if fault.kind == "429":
                sb.sent_429 += 1
                body = {"error": {"code": "rate_limit_exceeded", "message": "Rate limit exceeded. Retry after 1 "
                                  "seconds.", "retry_after": 1}}
                return JSONResponse(body, status_code=429, headers=headers)
            if fault.kind in ("500", "503"):
                code = "internal_error" if fault.kind == "500" else "service_unavailable"
                return problem(ApiProblem(int(fault.kind), code, "Injected fault"), headers)
            if fault.kind == "drop":
                return Response(b'{"data": [', status_code=200, media_type="application/json", headers=headers)
            repeat = fault.kind == "repeat_cursor"
        try:
            body = call() if not repeat else call_repeat(request)
        except ApiProblem as exc:
            return problem(exc, headers)
        return JSONResponse(body, headers=headers)

    def call_repeat(request: Request) -> Any:
        return sb.store.list_leads(dict(request.query_params), repeat_cursor=True)

    async def list_leads(request: Request) -> Response:
        return await guarded(request, "list", lambda: sb.store.list_leads(dict(request.query_params)))

    async def get_lead(request: Request) -> Response:
        return await guarded(request, "detail", lambda: sb.store.get_lead(request.path_params["lead_id"]))

    # --- admin ---------------------------------------------------------------------------------

    async def admin_reset(request: Request) -> Response:
        sb.reset()
        return JSONResponse({"ok": True})

    async def admin_config(request: Request) -> Response:
        changes = await request.json()
        known = set(asdict(sb.config))
        unknown = sorted(set(changes) - known)
        if unknown:
            return JSONResponse({"error": f"unknown config key(s) {unknown}"}, status_code=400)
        sb.config = replace(sb.config, **changes)
        sb.limiter.clear()
        return JSONResponse(asdict(sb.config))

    async def admin_seed(request: Request) -> Response:
        body = await request.json()
        start = parse_iso(body["start"], "start") if body.get("start") else None
        kw = {"start": start} if start else {}
        return JSONResponse(sb.store.seed(int(body.get("n", 100)), seed=int(body.get("seed", 0)),
                                          jobs=int(body.get("jobs", 5)), **kw))

    async def admin_leads(request: Request) -> Response:
        body = await request.json()
        now = datetime.now(UTC)
        added = [sb.store.add(lead, now=now) for lead in body.get("leads", [])]
        return JSONResponse({"added": [lead["id"] for lead in added]})

    async def admin_faults(request: Request) -> Response:
        body = await request.json()
        if body.get("kind") not in ("429", "500", "503", "drop", "repeat_cursor"):
            return JSONResponse({"error": "kind must be 429, 500, 503, drop or repeat_cursor"}, status_code=400)
        sb.faults.append(Fault(str(body["kind"]), body.get("route"), body.get("next"),
                               float(body.get("probability", 0.0))))
        return JSONResponse({"faults": len(sb.faults)})

    async def admin_stats(request: Request) -> Response:
        return JSONResponse(sb.stats())

    async def admin_state(request: Request) -> Response:
        return JSONResponse({"leads": list(sb.store.leads.values())})

    app = Starlette(routes=[
        Route("/v1/leads", list_leads, methods=["GET"]),
        Route("/v1/leads/{lead_id}", get_lead, methods=["GET"]),
        Route("/__admin/reset", admin_reset, methods=["POST"]),
        Route("/__admin/config", admin_config, methods=["PUT"]),
        Route("/__admin/seed", admin_seed, methods=["POST"]),
        Route("/__admin/leads", admin_leads, methods=["POST"]),
        Route("/__admin/faults", admin_faults, methods=["POST"]),
        Route("/__admin/stats", admin_stats, methods=["GET"]),
        Route("/__admin/state", admin_state, methods=["GET"]),
    ])
    app.state.sandbox = sb
    return app
