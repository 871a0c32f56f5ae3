"""Injected faults: "the next N matching calls" or "with probability p (seeded)", optionally per route.

Kinds: `429` (with Retry-After and X-RateLimit-* headers), `500`, `503`, `drop` (the connection dies
with no response), `slow` (sleep `slow_ms` first, then do the work and answer normally — a client
with a shorter timeout gives up while the request is still processed: the "answer unknown" case),
`batch_keep` (the batch delete `DELETE /api/leads {"ids": [...]}` answers 200 with the full count
but keeps `keep_ratio` of the leads: quirk 1, the batch POST's lie, seen from the delete side).
All but `slow` and `batch_keep` happen before any work, so they never change state.

A rule may also name query parameters (`"query": {"nextToken": "<token>"}`; null means "absent"): it then
fires only on calls that carry exactly those values, so a test can put a fault in front of one particular
page, whatever order a prefetching client sends its requests in (a rule keyed to timing is a race).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "drop", "slow", "batch_keep")
DEFAULT_SLOW_MS = 2000.0
DEFAULT_KEEP_RATIO = 0.5
BATCH_DELETE_ROUTE = "DELETE /api/leads"

FAULTS_SPEC_HELP = (
    "Comma-separated rules. 'KIND:P' fires with probability P (seeded by --seed), "
    "'next:N:KIND' fires on the next N matching calls. KIND is 429, 500, 503, drop, slow or batch_keep; "
    "'slow' takes an optional ':MS' (default 2000), 'batch_keep' (a batch delete answers 200 but keeps "
    "some leads) an optional ':RATIO' kept (default 0.5). Append '@METHOD /path' (or '@METHOD:/path', "
    "'@/path') to restrict a rule to one route. "
    "Example: '429:0.05,500:0.02,drop:0.01,next:3:503@POST /api/leads,slow:0.1:3000'."
)


def _normalise_route(route: str | None) -> str | None:
    if route is None:
        return None
    route = route.strip()
    method, sep, path = route.partition(":")
    if sep and path.startswith("/"):  # "POST:/api/leads"
        route = f"{method} {path}"
    return " ".join(route.split()) or None


@dataclass
class FaultRule:
    """One active fault rule."""

    kind: str
    next: int | None = None
    probability: float | None = None
    seed: int = 0
    route: str | None = None
    query: dict[str, str | None] | None = None
    slow_ms: float = DEFAULT_SLOW_MS
    retry_after: int = 1
    keep_ratio: float = DEFAULT_KEEP_RATIO
    fired: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        if (self.next is None) == (self.probability is None):
            raise ValueError("a fault rule needs exactly one of 'next' or 'probability'")
        if self.next is not None and self.next < 0:
            raise ValueError("'next' must be >= 0")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("'probability' must be between 0 and 1")
        if self.slow_ms < 0 or self.retry_after < 1:
            raise ValueError("'slow_ms' must be >= 0 and 'retry_after' >= 1")
        if not 0.0 <= self.keep_ratio <= 1.0:
            raise ValueError("'keep_ratio' must be between 0 and 1")
        if self.kind == "batch_keep":
            self.route = self.route or BATCH_DELETE_ROUTE
            if _normalise_route(self.route) != BATCH_DELETE_ROUTE:
                raise ValueError(f"a batch_keep fault only applies to {BATCH_DELETE_ROUTE}")
            # Only the batch form: a single-id delete (?id=) neither draws it nor spends its `next`.
            self.query = {**(self.query or {}), "id": None}
        self.route = _normalise_route(self.route)
        if self.query is not None and not (
            isinstance(self.query, dict)
            and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in self.query.items())
        ):
            raise ValueError("'query' must map parameter names to strings (or null: the parameter is absent)")
        self._rng = random.Random(f"fault:{self.seed}:{self.kind}")

    @classmethod
    def from_json(cls, body: Any) -> FaultRule:
        """Build from the POST /__admin/faults body; raises ValueError with a readable message."""
        if not isinstance(body, dict):
            raise ValueError("fault body must be a JSON object")
        known = {"kind", "next", "probability", "seed", "route", "query", "slow_ms", "retry_after", "keep_ratio"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        try:
            return cls(
                kind=str(body.get("kind")),
                next=None if body.get("next") is None else int(body["next"]),
                probability=None if body.get("probability") is None else float(body["probability"]),
                seed=int(body.get("seed", 0)),
                route=body.get("route"),
                query=body.get("query"),
                slow_ms=float(body.get("slow_ms", DEFAULT_SLOW_MS)),
                retry_after=int(body.get("retry_after", 1)),
                keep_ratio=float(body.get("keep_ratio", DEFAULT_KEEP_RATIO)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None

    def matches(self, method: str, template: str, path: str, query: Mapping[str, str] | None = None) -> bool:
        if self.query is not None:
            params = query or {}
            if any(params.get(name) != value for name, value in self.query.items()):
                return False
        if self.route is None:
            return True
        want_method, _, want_path = self.route.partition(" ")
        if not want_path:  # "/api/leads" alone, or a bare method "POST"
            if want_method.startswith("/"):
                return want_method in (template, path)
            return want_method.upper() == method
        return want_method.upper() == method and want_path in (template, path)

    def kept(self, ids: list[Any]) -> set[Any]:
        """batch_keep: which of a batch's ids stay (seeded; at least one when the ratio is above 0)."""
        kept = {i for i in ids if self._rng.random() < self.keep_ratio}
        if not kept and ids and self.keep_ratio > 0:
            kept = {ids[0]}
        return kept

    def fire(self) -> bool:
        """Whether this matching call gets the fault (consumes a 'next' or draws the seeded RNG)."""
        if self.next is not None:
            if self.next <= 0:
                return False
            self.next -= 1
        elif self._rng.random() >= (self.probability or 0.0):
            return False
        self.fired += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "next": self.next,
            "probability": self.probability,
            "seed": self.seed,
            "route": self.route,
            "query": self.query,
            "slow_ms": self.slow_ms,
            "retry_after": self.retry_after,
            "keep_ratio": self.keep_ratio,
            "fired": self.fired,
        }


class FaultPlan:
    """The active rules, checked in the order they were added; the first that fires wins."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()

    def pick(
        self, method: str, template: str, path: str, query: Mapping[str, str] | None = None
    ) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, template, path, query) and rule.fire():
                return rule
        return None


def parse_fault_spec(spec: str, seed: int = 0) -> list[FaultRule]:
    """Parse the CLI `--faults` syntax (see FAULTS_SPEC_HELP); raises ValueError."""
    rules: list[FaultRule] = []
    for index, raw in enumerate(item.strip() for item in spec.split(",")):
        if not raw:
            continue
        body, _, route = raw.partition("@")
        parts = [p.strip() for p in body.split(":")]
        try:
            if parts[0].lower() == "next":
                if len(parts) not in (3, 4):
                    raise ValueError
                kind, count = parts[2].lower(), int(parts[1])
                slow, keep = _extra(kind, parts[3] if len(parts) == 4 else None)
                rules.append(FaultRule(kind=kind, next=count, route=route or None, slow_ms=slow, keep_ratio=keep))
            else:
                if len(parts) not in (2, 3):
                    raise ValueError
                kind, prob = parts[0].lower(), float(parts[1])
                slow, keep = _extra(kind, parts[2] if len(parts) == 3 else None)
                rules.append(FaultRule(kind=kind, probability=prob, seed=seed + index, route=route or None,
                                       slow_ms=slow, keep_ratio=keep))
        except ValueError as exc:
            detail = f": {exc}" if str(exc) else ""
            raise ValueError(f"bad fault rule {raw!r}{detail} (expected KIND:P or next:N:KIND)") from None
    return rules


def _extra(kind: str, value: str | None) -> tuple[float, float]:
    """(slow_ms, keep_ratio) from the optional last part of a rule: milliseconds for `slow`, the
    kept share for `batch_keep`."""
    if value is None:
        return DEFAULT_SLOW_MS, DEFAULT_KEEP_RATIO
    if kind == "batch_keep":
        return DEFAULT_SLOW_MS, float(value)
    return float(value), DEFAULT_KEEP_RATIO
