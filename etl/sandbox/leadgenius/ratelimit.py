"""Per-credential request budget (SPEC A5): a fixed window per credential, opened by its first call.

Pure logic: the caller passes `now`, so tests need no clock patching. A refused call (429) does
not consume budget. A limit of 0 means unlimited; the headers then advertise UNLIMITED_BUDGET so
that a client always finds `X-RateLimit-*` and never divides by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNLIMITED_BUDGET = 1_000_000


@dataclass(frozen=True)
class Decision:
    """The outcome of one check, and the header values to send with the answer."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds when the window resets
    retry_after: int  # seconds, >= 1 (only meaningful when not allowed)

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """Budget `limit` calls per `window_s` for each credential key."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, calls counted)

    def clear(self) -> None:
        self._windows.clear()

    def check(self, key: str, *, limit: int, window_s: float, now: float) -> Decision:
        budget = limit if limit > 0 else UNLIMITED_BUDGET
        start, used = self._windows.get(key, (now, 0))
        if now >= start + window_s:
            start, used = now, 0
        end = start + window_s
        reset = math.ceil(end)
        if used >= budget:
            self._windows[key] = (start, used)
            return Decision(False, budget, 0, reset, max(1, math.ceil(end - now)))
        used += 1
        self._windows[key] = (start, used)
        return Decision(True, budget, budget - used, reset, max(1, math.ceil(end - now)))

    def peek(self, key: str, *, limit: int, window_s: float, now: float) -> Decision:
        """The current state of a budget without spending from it (headers for injected faults)."""
        budget = limit if limit > 0 else UNLIMITED_BUDGET
        start, used = self._windows.get(key, (now, 0))
        if now >= start + window_s:
            start, used = now, 0
        end = start + window_s
        return Decision(used < budget, budget, max(0, budget - used), math.ceil(end), max(1, math.ceil(end - now)))
