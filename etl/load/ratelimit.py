"""Rate-budget decisions: pure functions of the clock and the rate headers (SPEC A5; HubSpot's rolling window below).

The loader asks `delay(now)` before each send and reports `on_send` / `on_response`. Nothing
here sleeps or reads a clock, so every decision is unit-testable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Server reset times are whole Unix seconds; wait a little past them so our clock and the
# server's agree that the window has turned.
RESET_MARGIN_S = 0.25


@dataclass(frozen=True)
class RateHeaders:
    limit: int
    remaining: int
    reset_at: float  # Unix seconds

    @staticmethod
    def parse(headers: Mapping[str, str]) -> RateHeaders | None:
        try:
            return RateHeaders(
                limit=int(headers["x-ratelimit-limit"]),
                remaining=int(headers["x-ratelimit-remaining"]),
                reset_at=float(headers["x-ratelimit-reset"]),
            )
        except (KeyError, ValueError):
            return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds form); None when absent or unusable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def even_interval(now: float, reset_at: float, available: int) -> float:
    """Seconds between sends that spread `available` requests over the time left until `reset_at`."""
    return max(0.0, reset_at - now) / max(1, available)


@dataclass
class RateLimiter:
    """Learns the server budget and spends all of it, never more.

    Available budget = (remaining seen in this window, or the full limit once the window has
    turned) minus requests still in flight (they may already be counted by the server).
    `cap_per_min` (the user's `--rate`) additionally spaces sends evenly.

    `window_s` is the server's window (LeadGenius: a minute; LeadScraper: an hour). With
    `pace=True` the sends are also spread evenly over what is left of the window: the next one
    waits (time to reset) / (requests left). An hourly budget spent in one burst would leave
    the key's other users (and our own next run) nothing for the rest of the hour.
    """

    cap_per_min: float | None = None
    limit: int | None = None
    reset_at: float | None = None
    min_remaining: int | None = None
    in_flight: int = 0
    sent_since_turn: int = 0
    blocked_until: float = 0.0
    next_cap_slot: float = 0.0
    throttled: int = field(default=0)  # 429s seen
    provisional: bool = False  # reset_at is our guess after a window turn, not the server's word
    window_s: float = 60.0
    pace: bool = False
    last_send: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait before the next send may go out (0 = send now)."""
        waits = [self.blocked_until - now]
        if self.cap_per_min:
            waits.append(self.next_cap_slot - now)
        if self.limit is not None and self.reset_at is not None:
            if now >= self.reset_at + RESET_MARGIN_S:
                # The window has turned; nothing from the new one heard yet.
                available = self.limit - self.in_flight
            else:
                base = self.min_remaining if self.min_remaining is not None else self.limit
                available = base - self.in_flight
            if available <= 0:
                if now < self.reset_at + RESET_MARGIN_S:
                    waits.append(self.reset_at + RESET_MARGIN_S - now)
                else:
                    # Full limit in flight after a turn: wait for an answer to tell us more.
                    waits.append(0.05)
            elif self.pace and self.last_send is not None and now < self.reset_at + RESET_MARGIN_S:
                waits.append(self.last_send + even_interval(now, self.reset_at + RESET_MARGIN_S, available) - now)
        return max(0.0, *waits)

    def on_send(self, now: float) -> None:
        self.in_flight += 1
        self.last_send = now
        if self.reset_at is not None and now >= self.reset_at + RESET_MARGIN_S:
            # First send of a new window: forget the old window's remaining.
            self.min_remaining = None
            self.reset_at = now + self.window_s
            self.provisional = True
        if self.cap_per_min:
            self.next_cap_slot = max(self.next_cap_slot, now) + 60.0 / self.cap_per_min

    def on_response(
        self, now: float, headers: RateHeaders | None, *, status: int | None, retry_after: float | None
    ) -> None:
        """Record an answer (or a failed attempt: status None) to a request sent with on_send."""
        self.in_flight = max(0, self.in_flight - 1)
        if headers is not None:
            self.limit = headers.limit
            if (
                status == 429  # the server's latest word on this credential, whatever window we thought
                or self.reset_at is None
                or self.provisional
                or headers.reset_at > self.reset_at + 0.5  # a newer window (answers arrive out of order)
            ):
                self.reset_at = headers.reset_at
                self.min_remaining = headers.remaining
                self.provisional = False
            elif abs(headers.reset_at - self.reset_at) <= 0.5:
                self.min_remaining = min(
                    self.min_remaining if self.min_remaining is not None else headers.remaining, headers.remaining
                )
            # else: a late answer from a window that has already turned; it says nothing about this one
        if status == 429:
            self.throttled += 1
            if headers is None:
                self.min_remaining = 0
            wait = retry_after if retry_after is not None else 1.0
            self.blocked_until = max(self.blocked_until, now + wait)

    @property
    def budget_per_min(self) -> float | None:
        """The effective budget: the server's limit, capped by --rate."""
        caps = [c for c in (self.limit, self.cap_per_min) if c]
        return float(min(caps)) if caps else None


# --- rolling windows (HubSpot) ------------------------------------------------------------------
# HubSpot counts requests in a window that slides (no reset time to wait for, unlike the
# X-RateLimit-Reset budgets above): a send frees its slot `window_s` after the server counted it.


def rolling_delay(now: float, sent: Sequence[float], limit: int, window_s: float, margin: float = 0.0) -> float:
    """Seconds the next send waits so that at most `limit` sends fall in any `window_s` (0 = now).

    `sent`: the times counted against the window, ascending. `margin` pads each slot's release:
    the server counted the request a little after our timestamp (pure)."""
    if limit <= 0:
        return 0.0
    live = [t for t in sent if t > now - window_s - margin]
    if len(live) < limit:
        return 0.0
    return max(0.0, live[len(live) - limit] + window_s + margin - now)


@dataclass(frozen=True)
class RollingHeaders:
    """HubSpot's X-HubSpot-RateLimit-Max / -Remaining / -Interval-Milliseconds (non-search answers only)."""

    limit: int
    remaining: int
    window_s: float

    @staticmethod
    def parse(headers: Mapping[str, str] | None) -> RollingHeaders | None:
        low = {k.lower(): v for k, v in (headers or {}).items()}
        try:
            return RollingHeaders(
                limit=int(low["x-hubspot-ratelimit-max"]),
                remaining=int(low["x-hubspot-ratelimit-remaining"]),
                window_s=int(low["x-hubspot-ratelimit-interval-milliseconds"]) / 1000,
            )
        except (KeyError, ValueError):
            return None


@dataclass
class RollingBudget:
    """Spends a rolling-window budget whole, without a 429: `limit` answers in any `window_s`.

    Learns the limit and the window from the first answer's headers (until then, nothing is held
    back). Each answer is recorded at the time it arrived, an upper bound of when the server
    counted it. When the server's Remaining says more of the window is used than we sent (another
    process on the same token), the difference is counted as sent now, having no better time."""

    limit: int | None = None
    window_s: float = 10.0
    margin: float = 0.1
    sent: deque[float] = field(default_factory=deque)

    def delay(self, now: float) -> float:
        return 0.0 if self.limit is None else rolling_delay(now, self.sent, self.limit, self.window_s, self.margin)

    def on_answer(self, now: float, headers: RollingHeaders | None, *, throttled: bool = False) -> None:
        """Record an answer. A 429 was not counted by the server: it only teaches the limit (its
        Retry-After is the caller's to wait)."""
        if headers is not None:
            self.limit, self.window_s = headers.limit, headers.window_s
        if throttled:
            return
        self.sent.append(now)
        while self.sent and self.sent[0] <= now - self.window_s - self.margin:
            self.sent.popleft()
        if headers is not None:
            for _ in range(headers.limit - headers.remaining - len(self.sent)):
                self.sent.append(now)
