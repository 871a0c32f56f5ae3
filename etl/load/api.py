"""LeadGenius HTTP client: one request loop with auth, rate budget, retries and request stats.

The transport is injectable (httpx MockTransport / ASGITransport in tests, real sockets otherwise).
Every answer goes through `classify.raise_for_response`; tenacity decides when to replay.
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from etl import __version__
from etl.config import Settings, check_url
from etl.errors import (
    ApiError,
    AuthExpiredError,
    CredentialsRejected,
    FatalApiError,
    RetriableApiError,
    TargetUnreachable,
    UsageError,
)
from etl.load.auth import TokenKeeper, with_bulk_credentials
from etl.load.classify import Verdict, classify_status, raise_for_response, renew_after_401, request_maybe_sent
from etl.load.ratelimit import RateHeaders, RateLimiter, parse_retry_after
from etl.log import get_logger

Credential = Literal["bearer", "apikey", "none"]
GC_EVERY_PAGES = 10


class LeadInDoubt(ApiError):
    """A create whose answer never came: check the target before sending it again."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often to replay: transient answers many times, a plain 500 only a few."""

    max_attempts: int = 8
    max_500_attempts: int = 3
    max_connect_attempts: int = 5  # nothing listening: say so within seconds, not minutes
    base_wait_s: float = 0.5
    max_wait_s: float = 30.0

    def should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, RetriableApiError):
            return True
        return isinstance(exc, httpx.TransportError)

    def stopper(self) -> Callable[[RetryCallState], bool]:
        """A stop decision for one request: it counts that request's 500s and refused connections."""
        seen = {"500": 0, "connect": 0}

        def should_stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, httpx.ConnectError):
                seen["connect"] += 1
            elif isinstance(exc, RetriableApiError) and exc.status == 500:
                seen["500"] += 1
            return (
                state.attempt_number >= self.max_attempts
                or seen["500"] >= self.max_500_attempts
                or seen["connect"] >= self.max_connect_attempts
            )

        return should_stop

    def wait_s(self, state: RetryCallState, jitter: float) -> float:
        """Exponential backoff with full jitter; never shorter than the server's Retry-After."""
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(self.max_wait_s, self.base_wait_s * 2 ** (state.attempt_number - 1)) * jitter
        retry_after = exc.retry_after if isinstance(exc, RetriableApiError) else None
        # The limiter already holds every send until Retry-After has passed; this is for other callers.
        return float(max(backoff, retry_after or 0.0))


@dataclass
class RequestStats:
    by_status: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    token_refreshes: int = 0
    """Access tokens renewed with the refresh token (ahead of `exp`, or after a 401)."""
    logins: int = 0
    """Logins with e-mail and password (the first, or after a refused refresh)."""
    resent_after_401: int = 0
    """Requests sent again with a renewed token after a 401 `token_expired` / `no_valid_tokens`."""

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": dict(sorted(self.by_status.items())),
            "retries": self.retries,
            "token_refreshes": self.token_refreshes,
            "logins": self.logins,
            "resent_after_401": self.resent_after_401,
        }


class LeadGeniusApi:
    """Async client for SPEC Part A. Use as `async with LeadGeniusApi(settings) as api:`."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 8,
        rate_per_min: float | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        # The bulk credentials may live in the auth file (SPEC A1: optional `api_key`).
        settings = with_bulk_credentials(settings)
        self.settings = settings
        self.base_url = check_url(settings.base_url, allow_insecure_http=settings.allow_insecure_http)
        self._transport = transport
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self._jitter = jitter or (lambda: random.uniform(0.5, 1.0))
        self.limiters: dict[Credential, RateLimiter] = {
            "bearer": RateLimiter(cap_per_min=rate_per_min),
            "apikey": RateLimiter(cap_per_min=rate_per_min),
            "none": RateLimiter(),
        }
        self._slots = anyio.Semaphore(max(1, concurrency))
        self._budget_changed = anyio.Event()
        self.stats = RequestStats()
        self.on_throttled: Callable[[], None] | None = None  # e.g. the progress bar's 429 counter
        self.keeper = TokenKeeper(
            auth_file=settings.auth_file, base_url=self.base_url, email=settings.email, password=settings.password
        )
        self.log = get_logger(stage="http")
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> LeadGeniusApi:
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            transport=self._transport,
            timeout=httpx.Timeout(self.settings.timeout_s, connect=min(10.0, self.settings.timeout_s)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            headers={"User-Agent": f"leadgenius-etl/{__version__}", "Accept": "application/json"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("use `async with LeadGeniusApi(...)`")
        return self._client

    # --- the one I/O loop ----------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        credential: Credential = "bearer",
        idempotent: bool | None = None,
    ) -> Any:
        """Send with retries; return the JSON body of the success or raise an ApiError by action.

        Non-idempotent requests (POST creates) are never replayed blindly after the request may
        have reached the server: they raise LeadInDoubt so the caller checks first.
        """
        idempotent = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        renewals = 0
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(self._retriable(idempotent)),
                    stop=self.retry.stopper(),
                    wait=lambda s: self.retry.wait_s(s, self._jitter()),
                    sleep=self.sleep,
                    reraise=True,
                    before_sleep=self._note_retry,
                ):
                    with attempt:
                        return await self._send_once(method, path, params=params, json=json, credential=credential)
            except AuthExpiredError as exc:
                # A 401 means the server did not act on the request: sending it again is safe.
                if credential != "bearer" or not renew_after_401(exc.error_type, renewals):
                    raise CredentialsRejected(_refused_token_message(exc.error_type, renewals)) from None
                renewals += 1
                self.stats.resent_after_401 += 1
                # Renews once for every request that was refused the same token.
                await self.keeper.renew(self._post_raw, stale=exc.token)
            except httpx.TransportError as exc:
                if not idempotent and request_maybe_sent(exc):
                    raise LeadInDoubt(f"no answer to {method} {path} ({type(exc).__name__})") from None
                raise TargetUnreachable(
                    f"LeadGenius at {self.base_url} stayed unreachable after {self.retry.max_attempts} attempts "
                    f"({type(exc).__name__})"
                ) from None
            except FatalApiError as exc:
                if exc.status in (401, 403):
                    raise CredentialsRejected(f"LeadGenius refused the credentials: {exc.message}") from None
                raise

    def _retriable(self, idempotent: bool) -> Callable[[BaseException], bool]:
        def check(exc: BaseException) -> bool:
            if not idempotent and request_maybe_sent(exc):
                return False
            return self.retry.should_retry(exc)

        return check

    def _note_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        self.log.debug("retrying", attempt=state.attempt_number, error=str(exc))

    async def _headers(self, credential: Credential) -> tuple[dict[str, str], str | None]:
        """The credential's headers, and the access token in them (bearer only)."""
        if credential == "bearer":
            token = await self.keeper.token(self._post_raw)
            return {"Authorization": f"Bearer {token}"}, token
        if credential == "apikey":
            key, user = self.settings.api_key, self.settings.user_id or self.keeper.user_id
            if not key or not user:
                raise UsageError(
                    "the bulk endpoints need an API key: set LEADGENIUS_API_KEY and LEADGENIUS_USER_ID "
                    "(or add api_key to the auth file)"
                )
            return {"x-api-key": key, "x-user-id": user}, None
        return {}, None

    async def _send_once(
        self, method: str, path: str, *, params: dict[str, Any] | None, json: Any, credential: Credential
    ) -> Any:
        limiter = self.limiters[credential]
        async with self._slots:
            await self._wait_for_budget(limiter)
            # The token is taken after the waits for a slot and the rate budget, right before the
            # bytes go out: taken before them, it expired while the request waited (issue 10).
            headers, token = await self._headers(credential)
            limiter.on_send(self.clock())
            try:
                response = await self.client.request(method, path, params=params, json=json, headers=headers)
            except httpx.TransportError:
                limiter.on_response(self.clock(), None, status=None, retry_after=None)
                self.stats.by_status["transport_error"] += 1
                self._wake()
                raise
            limiter.on_response(
                self.clock(),
                RateHeaders.parse(response.headers),
                status=response.status_code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
            self._wake()
        self.stats.by_status[str(response.status_code)] += 1
        if response.status_code == 429 and self.on_throttled is not None:
            self.on_throttled()
        try:
            return raise_for_response(response)
        except AuthExpiredError as exc:
            exc.token = token  # what `renew` compares against: renewed once, not once per request
            raise

    async def _wait_for_budget(self, limiter: RateLimiter) -> None:
        while (delay := limiter.delay(self.clock())) > 0:
            event = self._budget_changed
            with anyio.move_on_after(delay):
                await event.wait()

    def _wake(self) -> None:
        self._budget_changed.set()
        self._budget_changed = anyio.Event()

    async def _post_raw(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Auth calls: no Bearer, retried on transient failures, never refreshed recursively."""
        try:
            status, answer = await self._post_raw_retrying(path, body)
        except (httpx.TransportError, RetriableApiError) as exc:
            # Not retriable again by the caller's loop: the retries were spent here.
            raise TargetUnreachable(
                f"LeadGenius at {self.base_url} stayed unreachable after retries ({type(exc).__name__})"
            ) from None
        if status == 200:
            if path == "/api/auth/refresh":
                self.stats.token_refreshes += 1
            elif path == "/api/auth":
                self.stats.logins += 1
        return status, answer

    async def _post_raw_retrying(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(self.retry.should_retry),
            stop=self.retry.stopper(),
            wait=lambda s: self.retry.wait_s(s, self._jitter()),
            sleep=self.sleep,
            reraise=True,
        ):
            with attempt:
                try:
                    response = await self.client.post(path, json=body)
                except httpx.TransportError:
                    self.stats.by_status["transport_error"] += 1
                    raise
                self.stats.by_status[str(response.status_code)] += 1
                if classify_status(response.status_code) is Verdict.RETRY:
                    raise RetriableApiError(
                        f"HTTP {response.status_code}",
                        status=response.status_code,
                        retry_after=parse_retry_after(response.headers.get("retry-after")),
                    )
                try:
                    return response.status_code, response.json()
                except ValueError:
                    return response.status_code, None
        raise AssertionError("unreachable")

    # --- API operations (SPEC A1–A4) --------------------------------------------

    async def login(self) -> None:
        await self.keeper.login(self._post_raw)

    async def company(self) -> dict[str, Any]:
        body = await self.request("GET", "/api/company")
        return dict(body["company"])

    async def list_clients(self) -> list[dict[str, Any]]:
        body = await self.request("GET", "/api/clients")
        return list(body.get("clients") or [])

    async def create_client(self, name: str, **fields: str) -> dict[str, Any]:
        body = await self.request("POST", "/api/clients", json={"clientName": name, **fields}, idempotent=True)
        return dict(body["client"])

    async def create_lead(self, payload: dict[str, str]) -> dict[str, Any]:
        """One lead per POST: the batch form answers 201 and stores only some (quirk 1)."""
        body = await self.request("POST", "/api/leads", json=payload, idempotent=False)
        return dict(body["lead"])

    async def update_lead(self, lead_id: str, fields: dict[str, str]) -> dict[str, Any]:
        body = await self.request("PUT", "/api/leads", json={"id": lead_id, **fields})
        return dict(body["lead"])

    async def update_leads(self, leads: list[dict[str, str]]) -> int:
        """The documented batch update (`{"leads": [{"id", ...}]}`): all or nothing, one bad item fails
        it whole; its count is the server's word only (verify by re-reading)."""
        body = await self.request("PUT", "/api/leads", json={"leads": leads})
        return int(body.get("updated") or 0)

    async def delete_lead(self, lead_id: str) -> None:
        await self.request("DELETE", "/api/leads", params={"id": lead_id})

    async def delete_leads(self, lead_ids: list[str]) -> int:
        """The documented batch delete; its count is the server's word only (verify by re-reading)."""
        body = await self.request("DELETE", "/api/leads", json={"ids": lead_ids})
        return int(body.get("deleted") or 0)

    @property
    def target_id(self) -> str:
        """Which account the ledger's rows belong to: the API root and the token's owner."""
        return f"{self.base_url}#{self.keeper.user_id or 'unknown'}"

    async def find_leads(self, *, email: str, client_id: str | None = None) -> list[dict[str, Any]]:
        params = {"email": email} | ({"client_id": client_id} if client_id else {})
        body = await self.request("GET", "/api/find-lead", params=params)
        return list(body.get("leads") or [])

    async def iter_leads(self, client_id: str, *, page_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        """Every lead of a client, page by page, to the end (quirk 6: `total` is the page size)."""
        params: dict[str, Any] = {"client_id": client_id, "limit": page_size}
        async for page in self._paginate("/api/leads", params, items_key="leads", credential="bearer"):
            yield page

    async def iter_bulk(
        self,
        company_id: str,
        *,
        client_id: str | None = None,
        table: Literal["enrich", "source"] = "enrich",
        fields: list[str] | None = None,
        page_size: int = 5000,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The API-key bulk list (SPEC A4), 5,000 per page, fields projected server-side."""
        params: dict[str, Any] = {"companyId": company_id, "limit": page_size}
        params["clientId"] = client_id or "ALL"
        if fields:
            params["fields"] = ",".join(fields)
        path = "/api/enrich-leads/list" if table == "enrich" else "/api/source-leads/list"
        async for page in self._paginate(path, params, items_key="items", credential="apikey"):
            yield page

    async def _paginate(
        self, path: str, params: dict[str, Any], *, items_key: str, credential: Credential
    ) -> AsyncIterator[list[dict[str, Any]]]:
        pager = Paginator()
        while True:
            query = dict(params) | ({"nextToken": pager.token} if pager.token else {})
            body = await self.request("GET", path, params=query, credential=credential)
            items = list(body.get(items_key) or [])
            next_token = body.get("nextToken")
            del body
            if items:
                yield items
            del items
            if pager.pages % GC_EVERY_PAGES == GC_EVERY_PAGES - 1:
                # httpx and tenacity leave small reference cycles per request; one that holds a
                # 5,000-lead response body lives until a full collection, which Python runs rarely.
                gc.collect()
            if not pager.advance(next_token):
                return


def _refused_token_message(error_type: str | None, renewals: int) -> str:
    if error_type == "token_expired":
        return (
            f"LeadGenius called {renewals + 1} fresh tokens in a row expired; check this machine's clock, "
            "then run `leadgenius-etl auth login`"
        )
    return f"LeadGenius does not accept the token ({error_type}); run `leadgenius-etl auth login`"


class PaginationLoop(ApiError):
    """The server handed back a nextToken it had already given: stop instead of looping forever."""


@dataclass
class Paginator:
    """Pure next-page decision: follow nextToken until null/absent; never compare counts."""

    token: str | None = None
    seen: set[str] = field(default_factory=set)
    pages: int = 0

    def advance(self, next_token: Any) -> bool:
        self.pages += 1
        if not next_token:
            self.token = None
            return False
        token = str(next_token)
        if token in self.seen:
            raise PaginationLoop(f"the server repeated a pagination token after {self.pages} pages")
        self.seen.add(token)
        self.token = token
        return True
