"""Extract leads from the LeadScraper API (seed 004): `GET /v1/leads`, filtered on the server.

Reading:
- `GET /leads?limit=100&sort=created_at&order=asc` plus the filters (`job_id`, `score_min`,
  `score_max`, `status`, `created_after`), following the opaque `pagination.next_cursor` until
  `pagination.has_more` is false. A cursor handed out twice is an error, never a loop.
- `GET /leads/{id}` only when the mapping reads a detail-only column (`signals_detected`,
  `enrichment_*`, `facebook_url`, `enriched_at`): one request per lead, so the default mapping
  never does.
- The budget is per hour (100 / 1,000 / 10,000 by plan). It is learned from `X-RateLimit-*`
  and spent evenly over the window (etl.load.ratelimit.RateLimiter with pace=True); a 429
  waits for the body's `error.retry_after` (or the reset) and is sent again.
- Errors (`{"error": {"code", "message", "details"}}`): 401/403 stop the run (exit 3),
  `invalid_request` is a usage error (exit 2, with the server's message), 5xx and transport
  errors are retried (tenacity), then stop the run (exit 3).

Each list page becomes one `SourceBatch` whose watermark is the newest `created_at` in it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import polars as pl
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from etl import __version__
from etl.config import Settings, check_url
from etl.errors import CredentialsRejected, EtlError, RetriableApiError, UsageError
from etl.load.ratelimit import RateHeaders, RateLimiter
from etl.log import get_logger, register_secret
from etl.mapping import normalise_header
from etl.report import no_rejects
from etl.sources import Incremental, SourceBatch

if TYPE_CHECKING:
    from etl.jobs import JobSpec
    from etl.mapping import Mapping

PAGE_SIZE = 100  # the API's largest page
STATUSES = ("hot", "warm", "cold")
DEFAULT_LOOKBACK = timedelta(minutes=2)
"""Re-read this much before the mark: a lead stamped `created_at` just before our last read may
become visible to the list a moment later. Re-read leads plan as unchanged (no request)."""
HOUR_S = 3600.0

LIST_COLUMNS: tuple[str, ...] = (
    "id", "email", "phone", "full_name", "first_name", "last_name", "job_title", "company_name",
    "linkedin_url", "twitter_url", "lead_score", "lead_status", "qualification_notes", "source_url",
    "job_id", "created_at",
)
"""The frame's columns from the list answer; `first_name` / `last_name` are `full_name` split."""

ENRICHMENT_KEYS: tuple[str, ...] = ("company_size", "industry", "location", "revenue_estimate", "confidence_score")
DETAIL_COLUMNS: tuple[str, ...] = (
    "signals_detected", "enrichment_data", *(f"enrichment_{k}" for k in ENRICHMENT_KEYS), "facebook_url",
    "enriched_at",
)
"""Columns only `GET /leads/{id}` can fill (one request per lead)."""


class SourceUnavailable(EtlError):
    """LeadScraper stayed unavailable (5xx, timeouts) or misbehaved; try again later."""

    exit_code = 3


# --- pure decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The server-side filters of `GET /leads` (seed 004, "List Leads")."""

    job_id: str | None = None
    score_min: int | None = None
    score_max: int | None = None
    status: str | None = None
    created_after: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("score_min", "score_max"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 100, not {value}")
        if self.score_min is not None and self.score_max is not None and self.score_min > self.score_max:
            raise UsageError(f"--score-min {self.score_min} is above --score-max {self.score_max}")
        if self.status is not None and self.status not in STATUSES:
            raise UsageError(f"--status must be one of {', '.join(STATUSES)}, not {self.status!r}")

    def params(self) -> dict[str, str]:
        out = {"limit": str(PAGE_SIZE), "sort": "created_at", "order": "asc"}
        for name in ("job_id", "score_min", "score_max", "status"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.created_after is not None:
            out["created_after"] = self.created_after.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return out

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.params().items() if k not in ("limit", "sort", "order")}


@dataclass
class CursorTrail:
    """Pure next-page decision: follow `next_cursor` while `has_more`; a repeated cursor raises."""

    cursor: str | None = None
    seen: set[str] = field(default_factory=set)
    pages: int = 0

    def advance(self, pagination: Any) -> bool:
        self.pages += 1
        info = pagination if isinstance(pagination, dict) else {}
        cursor = info.get("next_cursor")
        if not info.get("has_more"):
            return False
        if not cursor:
            raise SourceUnavailable(f"LeadScraper said has_more on page {self.pages} but gave no next_cursor")
        cursor = str(cursor)
        if cursor in self.seen:
            raise SourceUnavailable(
                f"LeadScraper handed out the same cursor twice (page {self.pages}); stopping instead of looping"
            )
        self.seen.add(cursor)
        self.cursor = cursor
        return True


def split_name(full_name: str | None) -> tuple[str | None, str | None]:
    """`full_name` -> (first, last) with nameparser: titles, suffixes, nicknames and surname
    particles (`van der`, `de la`) handled as a person would. One word -> (word, None), so the
    usual last-name fallback applies (quirk 4)."""
    from nameparser import HumanName

    if not full_name or not full_name.strip():
        return None, None
    name = HumanName(full_name.strip())
    first = " ".join(p for p in (name.first, name.middle) if p) or None
    last = name.last or None
    if first is None and last is not None:
        first, last = last, None
    return first, last


def flatten_detail(detail: dict[str, Any]) -> dict[str, str | None]:
    """The detail-only fields as text columns: signals joined, enrichment as `key: value` lines
    and one column per known key."""
    signals = detail.get("signals_detected")
    raw = detail.get("enrichment_data")
    enrichment: dict[str, Any] = raw if isinstance(raw, dict) else {}
    out: dict[str, str | None] = {
        "signals_detected": ", ".join(str(s) for s in signals) if isinstance(signals, list) and signals else None,
        "enrichment_data": "; ".join(f"{k}: {v}" for k, v in enrichment.items() if v not in (None, "")) or None,
        "facebook_url": _text(detail.get("facebook_url")),
        "enriched_at": _text(detail.get("enriched_at")),
    }
    for key in ENRICHMENT_KEYS:
        out[f"enrichment_{key}"] = _text(enrichment.get(key))
    return out


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def leads_frame(items: Sequence[dict[str, Any]], first_row: int, *, detail: bool) -> pl.DataFrame:
    """Pure: one list page (details merged in) -> `_row` + the source columns, all String."""
    columns = [*LIST_COLUMNS, *(DETAIL_COLUMNS if detail else ())]
    rows = []
    for item in items:
        row = {c: _text(item.get(c)) for c in LIST_COLUMNS}
        row["first_name"], row["last_name"] = split_name(row["full_name"])
        if detail:
            row.update(flatten_detail(item))
        rows.append(row)
    schema = dict.fromkeys(columns, pl.String)
    frame = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.insert_column(0, pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64, eager=True)
                               .alias("_row"))


def wants_detail(mapping: Mapping) -> bool:
    """Does the mapping read a column that only `GET /leads/{id}` fills?"""
    aliases: list[str] = [a for cols in mapping.fields.values() for a in cols]
    aliases += [a for note in mapping.notes for a in note.columns]
    aliases += [a for cols in mapping.ai_notes.values() for a in cols]
    wanted = {normalise_header(a) for a in aliases}
    return any(normalise_header(c) in wanted for c in DETAIL_COLUMNS)


def newest(values: Iterable[str | None]) -> datetime | None:
    best: datetime | None = None
    for value in values:
        if not value:
            continue
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        best = parsed if best is None or parsed > best else best
    return best


def error_of(body: Any) -> tuple[str, str, Any, float | None]:
    """(code, message, details, retry_after) from the seed's error body, tolerant of any shape."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "unknown", "unexpected answer", None, None
    retry = err.get("retry_after")
    try:
        retry_after = max(0.0, float(retry)) if retry is not None else None
    except (TypeError, ValueError):
        retry_after = None
    return str(err.get("code") or "unknown"), str(err.get("message") or "error"), err.get("details"), retry_after


@dataclass(frozen=True)
class Budget:
    """What the read needs against what the hour has left (the dry run's up-front statement)."""

    list_requests: int
    detail_requests: int
    limit: int | None
    remaining: int | None
    reset_at: float | None
    partial: bool = False
    """A dry run that stopped when the window's budget ran out: more pages follow."""

    @property
    def needed(self) -> int:
        return self.list_requests + self.detail_requests

    @property
    def covered(self) -> bool | None:
        return None if self.remaining is None else self.needed <= self.remaining

    def to_dict(self) -> dict[str, Any]:
        reset = datetime.fromtimestamp(self.reset_at, UTC).isoformat() if self.reset_at else None
        return {
            "list_requests": self.list_requests, "detail_requests": self.detail_requests, "needed": self.needed,
            "limit_per_window": self.limit, "remaining": self.remaining, "resets_at": reset,
            "covered": self.covered, "partial": self.partial, "message": self.message(),
        }

    def message(self) -> str:
        more = "more than " if self.partial else ""
        need = f"{more}{self.needed:,} LeadScraper request(s) ({self.list_requests:,} list page(s)"
        need += f" + {self.detail_requests:,} lead detail(s))" if self.detail_requests else ")"
        if self.partial:
            when = datetime.fromtimestamp(self.reset_at, UTC).strftime("%H:%M:%S UTC") if self.reset_at else "?"
            return (
                f"the hour's budget does not cover the read: the import needs {need}, and this window "
                f"({self.limit or '?'} requests, resets {when}) ran out after {self.list_requests:,} page(s); "
                "the dry run stopped there (counts below are for the leads read)"
            )
        if self.remaining is None:
            return f"the import needs {need}; the budget left is unknown (no X-RateLimit headers)"
        when = datetime.fromtimestamp(self.reset_at, UTC).strftime("%H:%M:%S UTC") if self.reset_at else "?"
        if self.covered:
            return f"the import needs {need}; {self.remaining:,} left in this window (resets {when}): covered"
        windows = -(-(self.needed - self.remaining) // max(1, self.limit or 1))
        return (
            f"the import needs {need} but only {self.remaining:,} are left in this window (resets {when}): "
            f"it will wait for about {windows} more window(s) of {self.limit or '?'} requests"
        )


# --- the client: one request loop --------------------------------------------------------------


@dataclass
class Stats:
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_status.values()), "list": self.by_route["list"], "detail": self.by_route["detail"],
            "by_status": dict(sorted(self.by_status.items())), "retries": self.retries,
            "throttled_429": self.throttled,
        }


class LeadScraperClient:
    """`async with LeadScraperClient(api_key, base_url) as api:` — rate-paced, retried GETs."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 30.0,
        max_attempts: int = 6,
        max_throttled: int = 12,
        pace: bool = True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        register_secret(api_key)  # never in a log line, report or error
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=timeout_s,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": f"leadgenius-etl/{__version__}"},
        )
        self.limiter = RateLimiter(window_s=HOUR_S, pace=pace)
        self.stats = Stats()
        self.max_attempts = max_attempts
        self.max_throttled = max_throttled
        self.clock = clock
        self.sleep = sleep
        self.log = get_logger(stage="extract", source="leadscraper")
        self.stopped_early = False

    async def __aenter__(self) -> LeadScraperClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: dict[str, str] | None = None, *, route: str) -> Any:
        """The JSON body of a success, after waiting for budget and retrying what can be retried."""
        failures = {"server": 0, "throttled": 0}

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            kind = "throttled" if isinstance(exc, RetriableApiError) and exc.status == 429 else "server"
            failures[kind] += 1
            return failures["server"] >= self.max_attempts or failures["throttled"] >= self.max_throttled

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetriableApiError) and exc.status == 429:
                return 0.0  # the limiter holds the next send until retry_after / the reset
            return float(min(30.0, 0.5 * 2 ** (failures["server"] - 1)))

        def note(state: RetryCallState) -> None:
            self.stats.retries += 1

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda e: isinstance(e, RetriableApiError | httpx.TransportError)),
                stop=stop, wait=wait, sleep=self.sleep, reraise=True, before_sleep=note,
            ):
                with attempt:
                    return await self._send(path, params, route=route)
        except RetriableApiError as exc:
            what = "kept answering 429" if exc.status == 429 else f"stayed unavailable ({exc.message})"
            raise SourceUnavailable(f"LeadScraper at {self.base_url} {what} after retries") from None
        except httpx.TransportError as exc:
            raise SourceUnavailable(
                f"LeadScraper at {self.base_url} stayed unreachable after retries ({type(exc).__name__})"
            ) from None
        raise AssertionError("unreachable")

    async def _send(self, path: str, params: dict[str, str] | None, *, route: str) -> Any:
        while (delay := self.limiter.delay(self.clock())) > 0:
            await self.sleep(delay)
        self.limiter.on_send(self.clock())
        self.stats.by_route[route] += 1
        try:
            response = await self._client.get(path, params=params)
        except httpx.TransportError:
            self.limiter.on_response(self.clock(), None, status=None, retry_after=None)
            self.stats.by_status["transport_error"] += 1
            raise
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        headers = RateHeaders.parse(response.headers)
        code, message, details, retry_after = error_of(body) if status >= 400 else ("", "", None, None)
        if status == 429 and retry_after is None and headers is not None:
            retry_after = max(1.0, headers.reset_at - self.clock())
        self.limiter.on_response(self.clock(), headers, status=status, retry_after=retry_after)
        self.stats.by_status[str(status)] += 1
        if status < 400:
            if not isinstance(body, dict):
                raise RetriableApiError(f"HTTP {status} with a body that is not a JSON object", status=status)
            return body
        text = f"{message}" + (f" ({json.dumps(details, ensure_ascii=False)})" if details else "")
        if status == 429:
            self.stats.throttled += 1
            self.log.info("throttled", retry_after=retry_after)
            raise RetriableApiError(f"HTTP 429: {text}", status=429, retry_after=retry_after)
        if status >= 500:
            raise RetriableApiError(f"HTTP {status} {code}: {text}", status=status)
        if status in (401, 403):
            raise CredentialsRejected(
                f"LeadScraper refused the API key (HTTP {status} {code}: {text}); check LEADSCRAPER_API_KEY"
            )
        if status == 404 and route == "detail":
            raise LeadGone(text)
        if status == 404:
            raise UsageError(
                f"LeadScraper answered 404 for {path} ({text}); LEADSCRAPER_BASE_URL must include /v1 "
                f"(it is {self.base_url})"
            )
        raise UsageError(f"LeadScraper refused the request: {text} [{code}]")

    async def lead(self, lead_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.get(f"/leads/{lead_id}", route="detail")
        return body

    def budget(self, list_requests: int, detail_requests: int, *, partial: bool = False) -> Budget:
        lim = self.limiter
        return Budget(list_requests, detail_requests, lim.limit, lim.min_remaining, lim.reset_at, partial)

    def exhausted(self) -> bool:
        """No request left in this window (the next send would wait for the reset)."""
        lim = self.limiter
        return lim.min_remaining == 0 and lim.reset_at is not None and self.clock() < lim.reset_at

    async def pages(
        self, filters: Filters, *, stop_when_exhausted: bool = False
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of leads matching `filters`; with `stop_when_exhausted` (a dry run), stop
        when this window's budget is spent instead of waiting up to an hour for the next."""
        trail = CursorTrail()
        self.stopped_early = False
        while True:
            params = filters.params() | ({"cursor": trail.cursor} if trail.cursor else {})
            body = await self.get("/leads", params, route="list")
            data = body.get("data")
            if not isinstance(data, list):
                raise SourceUnavailable("LeadScraper answered a leads page without a `data` list")
            yield [item for item in data if isinstance(item, dict)]
            if not trail.advance(body.get("pagination")):
                return
            if stop_when_exhausted and self.exhausted():
                self.stopped_early = True
                return


class LeadGone(Exception):
    """A lead listed a moment ago has no detail any more (deleted at the source)."""


# --- the pipeline source and the incremental job adapter ----------------------------------------


@dataclass
class LeadScraperSource:
    """A pipeline `AsyncSource`: LeadScraper leads matching `filters`, one batch per list page."""

    api_key: str
    base_url: str
    filters: Filters = field(default_factory=Filters)
    detail: bool = False
    dry_run: bool = False
    """A dry run reads list pages only (the details' cost is stated, not spent) and stops when the
    window's budget runs out rather than wait up to an hour for the next."""
    detail_concurrency: int = 4
    timeout_s: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None
    name: str = field(init=False)
    stats: Stats = field(init=False, default_factory=Stats)
    budget: Budget | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.name = "leadscraper" if self.filters.created_after is None else "leadscraper:incremental"

    def api_requests(self) -> dict[str, Any]:
        """etl.sources.source_requests."""
        return {"api": "LeadScraper", **self.stats.to_dict()}

    async def abatches(self) -> AsyncIterator[SourceBatch]:
        # A dry run is not paced: it reads what this window allows at once, then says what is left.
        async with LeadScraperClient(self.api_key, self.base_url, transport=self.transport,
                                     timeout_s=self.timeout_s, pace=not self.dry_run) as api:
            self.stats = api.stats
            next_row, details = 1, 0
            fetch = self.detail and not self.dry_run
            async for page in api.pages(self.filters, stop_when_exhausted=self.dry_run):
                rejects = no_rejects()
                if fetch and page:
                    page, gone = await self._with_details(api, page)
                    rejects = _gone_rejects(gone, next_row + len(page))
                details += len(page) + rejects.height if self.detail else 0
                frame = leads_frame(page, next_row, detail=self.detail)
                next_row += frame.height + rejects.height
                self.budget = api.budget(api.stats.by_route["list"], details)
                yield SourceBatch(frame, rejects, {"leadscraper_pages": 1},
                                  newest(item.get("created_at") for item in page))
            self.budget = api.budget(api.stats.by_route["list"], details, partial=api.stopped_early)

    async def _with_details(
        self, api: LeadScraperClient, page: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Each lead of the page with its detail answer merged in; leads deleted meanwhile apart."""
        merged: list[dict[str, Any] | None] = [None] * len(page)
        gone: list[dict[str, Any]] = []
        slots = anyio.Semaphore(self.detail_concurrency)

        async def fetch(i: int, item: dict[str, Any]) -> None:
            async with slots:
                try:
                    merged[i] = item | await api.lead(str(item.get("id")))
                except LeadGone:
                    gone.append(item)

        async with anyio.create_task_group() as tg:
            for i, item in enumerate(page):
                tg.start_soon(fetch, i, item)
        return [m for m in merged if m is not None], gone


def _gone_rejects(gone: list[dict[str, Any]], first_row: int) -> pl.DataFrame:
    if not gone:
        return no_rejects()
    frame = leads_frame(gone, first_row, detail=False)
    reasons = pl.DataFrame({
        "_reason": ["lead deleted at LeadScraper between the list and its detail request"] * len(gone),
        "_rule": ["source_deleted"] * len(gone),
    })
    return pl.concat([frame.select("_row"), reasons, frame.drop("_row")], how="horizontal")


@dataclass
class LeadScraperIncremental(Incremental):
    """`etl.jobs.run_incremental`'s adapter: leads created since the mark (`created_after`)."""

    api_key: str
    base_url: str
    filters: Filters
    detail: bool
    dry_run: bool = False
    timeout_s: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None
    mark: str = "leadscraper.created_at"
    lookback: timedelta = DEFAULT_LOOKBACK
    last: LeadScraperSource | None = field(default=None, init=False)

    def source(self, since: datetime | None) -> LeadScraperSource:
        filters = Filters(self.filters.job_id, self.filters.score_min, self.filters.score_max, self.filters.status,
                          created_after=since)
        self.last = LeadScraperSource(self.api_key, self.base_url, filters, detail=self.detail,
                                      dry_run=self.dry_run, timeout_s=self.timeout_s, transport=self.transport)
        return self.last

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filters": self.filters.describe(), "details_read": self.detail}
        if self.last is not None:
            out["leadscraper_requests"] = self.last.stats.to_dict()
            if self.last.budget is not None:
                out["budget"] = self.last.budget.to_dict()
        return out


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a whole number between 0 and 100, not {value!r}") from None


def incremental(spec: JobSpec, settings: Settings, mapping: Mapping) -> LeadScraperIncremental:
    """The adapter for a `source = "leadscraper"` job (or `import leadscraper`)."""
    if not settings.leadscraper_api_key:
        raise UsageError("no LeadScraper API key: set LEADSCRAPER_API_KEY (ls_…)")
    register_secret(settings.leadscraper_api_key)
    base = str(spec.params.get("leadscraper_base_url") or settings.leadscraper_base_url)
    base = check_url(base, allow_insecure_http=settings.allow_insecure_http, what="LeadScraper URL")
    status = spec.params.get("status")
    filters = Filters(
        job_id=str(spec.params["job_id"]) if spec.params.get("job_id") else None,
        score_min=_int(spec.params.get("score_min"), "score_min"),
        score_max=_int(spec.params.get("score_max"), "score_max"),
        status=str(status).lower() if status else None,
    )
    lookback = spec.lookback_delta() if spec.lookback else DEFAULT_LOOKBACK
    return LeadScraperIncremental(settings.leadscraper_api_key, base, filters, wants_detail(mapping),
                                  dry_run=spec.dry_run, timeout_s=settings.timeout_s, lookback=lookback)
