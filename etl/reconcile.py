"""Reconcile: re-read the target to the end (quirk 6: `total` lies), compare with the ledger, repair.

Repairs are bounded: re-POST what the target acknowledged but does not hold (quirk 1 style silent
drops), and delete the extra copy when a create whose answer was lost landed twice (quirk 7).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from etl.errors import ApiError
from etl.fields import LEAD_FIELDS
from etl.load.api import LeadGeniusApi
from etl.log import get_logger
from etl.state import Ledger, Outcome

ACKNOWLEDGED = ("created", "updated", "exists")
# Our clock (the ledger's intent times) against the server's (createdAt): how far apart they may be.
CLOCK_SLACK_S = 2.0


SNAPSHOT_SCHEMA: dict[str, Any] = {
    "id": pl.String, "createdAt": pl.String, "updatedAt": pl.String,
    **{f: pl.String for f in LEAD_FIELDS if f != "client_id"},
}


@dataclass
class TargetSnapshot:
    """Every lead of a client as one polars frame (a 1M-lead client stays a few hundred MB)."""

    pages: int = 0
    _frames: list[pl.DataFrame] = field(default_factory=list)
    _frame: pl.DataFrame | None = None

    def add(self, page: Iterable[dict[str, Any]]) -> None:
        self.pages += 1
        rows = [{k: (None if v is None else str(v)) for k, v in lead.items() if k in SNAPSHOT_SCHEMA} for lead in page]
        if rows:
            self._frames.append(pl.from_dicts(rows, schema=SNAPSHOT_SCHEMA))
        self._frame = None

    @property
    def frame(self) -> pl.DataFrame:
        """The leads, with `_key` (normalised e-mail; null when the lead has none)."""
        if self._frame is None:
            frames = self._frames or [pl.DataFrame(schema=SNAPSHOT_SCHEMA)]
            self._frame = pl.concat(frames).with_columns(
                _key=pl.col("email").str.strip_chars().str.to_lowercase()
            )
            self._frames = [self._frame.drop("_key")]
        return self._frame

    @property
    def leads(self) -> int:
        return self.frame.height

    def keys(self) -> set[str]:
        return set(self.frame.get_column("_key").drop_nulls().to_list())

    def doubles(self) -> dict[str, list[dict[str, Any]]]:
        """Only the e-mails held by two leads or more, with those leads."""
        frame = self.frame.filter(pl.col("_key").is_not_null() & pl.col("_key").is_duplicated())
        groups: dict[str, list[dict[str, Any]]] = {}
        for lead in frame.to_dicts():
            groups.setdefault(lead["_key"], []).append(lead)
        return groups


async def read_target(api: LeadGeniusApi, client_id: str, *, company_id: str | None = None) -> TargetSnapshot:
    """One paginated read of the client: the bulk list (5,000/page, API-key budget) when we have a
    key and the company id, else /api/leads (1,000/page). Never one look-up per lead."""
    snap = TargetSnapshot()
    if company_id and api.settings.api_key:
        async for page in api.iter_bulk(company_id, client_id=client_id):
            snap.add(page)
    else:
        async for page in api.iter_leads(client_id):
            snap.add(page)
    return snap


@dataclass
class ReconcileResult:
    confirmed: int = 0
    missing: int = 0
    repaired: int = 0
    duplicates_removed: int = 0
    landed_late: list[str] = field(default_factory=list)
    """Keys of creates reported failed (no answer) that landed after all: now created, not failed."""
    rounds: int = 0
    visible: bool | None = None
    missing_keys: list[str] = field(default_factory=list)
    snapshot: TargetSnapshot | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run report's `reconcile` block."""
        return {
            "rounds": self.rounds, "repaired": self.repaired, "duplicates_removed": self.duplicates_removed,
            "landed_late": len(self.landed_late),
            "visible_by_slug": self.visible, "missing_sample": self.missing_keys[:50],
            "target_leads_after": self.snapshot.leads if self.snapshot else None,
        }


def diff(
    expected: set[str], acknowledged: dict[str, dict[str, Any]], snap: TargetSnapshot
) -> tuple[set[str], set[str]]:
    """Pure: (confirmed keys, acknowledged-but-missing keys)."""
    present = snap.keys()
    confirmed = expected & present
    missing = {k for k in expected - present if k in acknowledged}
    return confirmed, missing


def extra_copies(rows: dict[str, dict[str, Any]], snap: TargetSnapshot) -> list[dict[str, Any]]:
    """Pure: leads that are second copies made by our own lost-answer creates.

    Only for keys we created, only leads other than the one the ledger holds, and only leads created
    after our first attempt for that key — pre-existing duplicates of the user are left alone.
    """
    extras = []
    doubles = snap.doubles()
    for key, row in rows.items():
        group = doubles.get(key, [])
        if not row.get("ours") or len(group) < 2 or not row.get("lead_id"):
            continue
        intent = float(row.get("intent_at") or 0) - CLOCK_SLACK_S
        for lead in group:
            if lead.get("id") != row["lead_id"] and epoch(lead.get("createdAt")) >= intent:
                extras.append(lead)
    return extras


def landed_late(rows: dict[str, dict[str, Any]], snap: TargetSnapshot) -> dict[str, dict[str, Any]]:
    """Pure: creates the loader gave up on unanswered (`failed`, `ours`) that the target now holds.

    The first copy created after our first attempt is the one to keep; `extra_copies` then sees the
    others. A copy older than the attempt was not ours (someone else's lead): nothing is adopted then.
    """
    adopted: dict[str, dict[str, Any]] = {}
    candidates = {k: r for k, r in rows.items() if r.get("status") == "failed" and r.get("ours")}
    if not candidates:
        return adopted
    frame = snap.frame.filter(pl.col("_key").is_in(list(candidates)))
    for lead in frame.sort("createdAt", nulls_last=True).to_dicts():
        key = lead["_key"]
        intent = float(candidates[key].get("intent_at") or 0) - CLOCK_SLACK_S
        if key not in adopted and epoch(lead.get("createdAt")) >= intent:
            adopted[key] = lead
    return adopted


def epoch(value: Any) -> float:
    """An API timestamp (ISO 8601, `Z`) as Unix seconds; 0.0 when absent or unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def reconcile(
    api: LeadGeniusApi,
    ledger: Ledger,
    *,
    target: str,
    client_id: str,
    keys: set[str] | None,
    repair: bool,
    company_id: str | None = None,
    max_rounds: int = 3,
) -> ReconcileResult:
    """Compare the target with the ledger for `keys` (all ledger keys of the client when None)."""
    log = get_logger(stage="reconcile", client_id=client_id)
    rows = {r["key"]: r for r in ledger.rows(target, client_id, keys)}
    expected = set(keys) if keys is not None else {k for k, r in rows.items() if r["status"] in ACKNOWLEDGED}
    acknowledged = {k: r for k, r in rows.items() if r["status"] in ACKNOWLEDGED}
    result = ReconcileResult()
    for round_no in range(1, max_rounds + 2):
        result.rounds = round_no
        snap = await read_target(api, client_id, company_id=company_id)
        result.snapshot = snap
        for key, lead in landed_late(rows, snap).items():
            written = lead.get("updatedAt")
            ledger.record_outcome(target, client_id, Outcome(key, "created", str(lead["id"]), written_at=written),
                                  ours=True)
            rows[key] = acknowledged[key] = {**rows[key], "status": "created", "lead_id": lead["id"]}
            expected.add(key)
            result.landed_late.append(key)
        if repair:
            for lead in extra_copies(acknowledged, snap):
                try:
                    await api.delete_lead(str(lead["id"]))
                    result.duplicates_removed += 1
                except ApiError as exc:
                    log.warning("could not delete a duplicate", lead_id=lead.get("id"), reason=exc.message)
        confirmed, missing = diff(expected, acknowledged, snap)
        result.confirmed, result.missing, result.missing_keys = len(confirmed), len(missing), sorted(missing)
        log.info("reconciled", round=round_no, confirmed=len(confirmed), missing=len(missing), target_leads=snap.leads)
        if not missing or not repair or round_no > max_rounds:
            break
        for key in sorted(missing):
            row = acknowledged[key]
            if not row.get("payload"):
                continue
            try:
                lead = await api.create_lead(json.loads(row["payload"]))
            except ApiError as exc:
                log.warning("repair failed", key=key, reason=exc.message)
                continue
            result.repaired += 1
            written = lead.get("updatedAt")
            ledger.record_outcome(target, client_id, Outcome(key, "created", str(lead.get("id")),
                                                             written_at=None if written is None else str(written)),
                                  ours=True)
            row["lead_id"] = lead.get("id")
        ledger.flush()
    # The invisible-leads check (quirk 5): a one-lead listing by slug must find something.
    if expected:
        body = await api.request("GET", "/api/leads", params={"client_id": client_id, "limit": 1})
        result.visible = bool(body.get("leads"))
    return result
