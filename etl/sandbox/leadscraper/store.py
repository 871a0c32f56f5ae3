"""The LeadScraper sandbox's state: leads, filters, sorts and opaque cursors (seed 004, "Leads").

Plain Python, no HTTP: `LeadStore.list_leads` / `get_lead` are named after the API operations
and raise `ApiProblem` with the seed's error codes. Seeded data is messy on purpose: missing
e-mails, upper-case e-mails, one-word names, e-mails repeated across jobs, null phones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SORTS = {"created_at", "score", "company"}
STATUSES = ("hot", "warm", "cold")
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
BASE_TIME = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)

_FIRST = ["John", "Maria", "Wei", "Aisha", "Lars", "Sofia", "Kenji", "Olu", "Chloé", "Rafael", "Anna", "Mehmet"]
_LAST = ["Doe", "García", "Chen", "Okafor", "Nilsson", "Rossi", "Tanaka", "van der Berg", "O'Brien", "Müller"]
_COMPANIES = ["Example Corp", "Acme SaaS", "Globex", "Initech", "Umbrella Health", "Hooli", "Vandelay Imports"]
_TITLES = ["VP of Sales", "Head of Growth", "CTO", "Founder & CEO", "Marketing Manager", "SDR", None]
_NOTES = [
    "Company recently raised Series A funding. Hiring for sales roles. High buying intent.",
    "Visited pricing page twice; small team.",
    "No clear buying signal yet.",
    None,
]
_SIGNALS = ["hiring", "recent_funding", "growing_company", "new_executive", "tech_stack_change"]


class ApiProblem(Exception):
    """An error answer: HTTP status, the seed's error code, a message and optional details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str, field_name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(400, "invalid_request", f"Invalid {field_name}",
                         {"field": field_name, "reason": "Expected an ISO 8601 date"}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int_param(params: dict[str, str], name: str, low: int, high: int, default: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiProblem(400, "invalid_request", f"Invalid {name}",
                         {"field": name, "reason": "Expected an integer"}) from None
    if not low <= value <= high:
        raise ApiProblem(400, "invalid_request", f"Invalid {name}",
                         {"field": name, "reason": f"Must be between {low} and {high}"})
    return value


@dataclass
class LeadStore:
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0

    def clear(self) -> None:
        self.leads.clear()
        self.seq = 0

    # --- admin ---------------------------------------------------------------------------------

    def add(self, lead: dict[str, Any], *, now: datetime) -> dict[str, Any]:
        """Store one lead (admin): missing `id` / `created_at` are filled; detail fields defaulted."""
        self.seq += 1
        record: dict[str, Any] = {
            "id": f"lead_{self.seq:010d}", "email": None, "phone": None, "full_name": None, "job_title": None,
            "company_name": None, "linkedin_url": None, "twitter_url": None, "facebook_url": None,
            "lead_score": 50, "lead_status": "warm", "qualification_notes": None, "signals_detected": [],
            "enrichment_data": {}, "source_url": None, "job_id": "job_0000000001", "created_at": iso(now),
            "enriched_at": None,
        }
        record.update(lead)
        if record.get("enriched_at") is None:
            record["enriched_at"] = record["created_at"]
        self.leads[str(record["id"])] = record
        return record

    def seed(self, n: int, *, seed: int = 0, jobs: int = 5, start: datetime = BASE_TIME) -> dict[str, int]:
        """`n` messy leads, one minute apart from `start`; returns how many of each quirk."""
        rng = random.Random(seed)
        counts = {"leads": 0, "missing_email": 0, "upper_email": 0, "one_word_name": 0, "repeated_email": 0,
                  "null_phone": 0}
        emails: list[str] = []
        for i in range(n):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            company = rng.choice(_COMPANIES)
            domain = company.lower().replace(" ", "") + ".com"
            email: str | None = f"{first.lower()}.{last.lower().replace(' ', '').replace(chr(39), '')}{i}@{domain}"
            roll = rng.random()
            if roll < 0.05:
                email = None
                counts["missing_email"] += 1
            elif roll < 0.15:
                email = str(email).upper()
                counts["upper_email"] += 1
            elif roll < 0.20 and emails:
                email = rng.choice(emails)  # the same person scraped by another job
                counts["repeated_email"] += 1
            if email and email.lower() not in emails:
                emails.append(email.lower())
            name = first if rng.random() < 0.06 else f"{first} {last}"
            if " " not in name:
                counts["one_word_name"] += 1
            phone = None if rng.random() < 0.25 else f"+1-555-{rng.randint(0, 9999):04d}"
            counts["null_phone"] += phone is None
            score = rng.randint(0, 100)
            status = "hot" if score >= 70 else "warm" if score >= 40 else "cold"
            created = start + timedelta(minutes=i)
            slug = name.lower().replace(" ", "")
            self.add({
                "email": email, "phone": phone, "full_name": name, "job_title": rng.choice(_TITLES),
                "company_name": company, "linkedin_url": f"https://linkedin.com/in/{slug}{i}",
                "twitter_url": f"https://twitter.com/{slug}{i}" if rng.random() < 0.4 else None,
                "lead_score": score, "lead_status": status, "qualification_notes": rng.choice(_NOTES),
                "signals_detected": rng.sample(_SIGNALS, rng.randint(0, 3)),
                "enrichment_data": {"company_size": rng.choice(["1-10", "11-50", "50-100", "100-500"]),
                                    "industry": rng.choice(["SaaS", "Fintech", "Health"]),
                                    "location": rng.choice(["San Francisco, CA", "Berlin, DE", "Lagos, NG"]),
                                    "revenue_estimate": "$5M-$10M", "confidence_score": round(rng.random(), 2)},
                "source_url": f"https://{domain}/about", "job_id": f"job_{(i % jobs) + 1:010d}",
                "created_at": iso(created), "enriched_at": iso(created + timedelta(seconds=3)),
            }, now=created)
            counts["leads"] += 1
        return counts

    # --- the API -------------------------------------------------------------------------------

    def get_lead(self, lead_id: str) -> dict[str, Any]:
        lead = self.leads.get(lead_id)
        if lead is None:
            raise ApiProblem(404, "not_found", "Lead not found", {"id": lead_id})
        return dict(lead)

    def list_leads(self, params: dict[str, str], *, repeat_cursor: bool = False) -> dict[str, Any]:
        """GET /v1/leads: filters, sort, order, limit and an opaque keyset cursor."""
        limit = _int_param(params, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
        assert limit is not None
        score_min = _int_param(params, "score_min", 0, 100, None)
        score_max = _int_param(params, "score_max", 0, 100, None)
        status = params.get("status")
        if status and status not in STATUSES:
            raise ApiProblem(400, "invalid_request", "Invalid status",
                             {"field": "status", "reason": f"Must be one of {', '.join(STATUSES)}"})
        after = parse_iso(params["created_after"], "created_after") if params.get("created_after") else None
        before = parse_iso(params["created_before"], "created_before") if params.get("created_before") else None
        sort = params.get("sort") or "created_at"
        if sort not in SORTS:
            raise ApiProblem(400, "invalid_request", "Invalid sort",
                             {"field": "sort", "reason": f"Must be one of {', '.join(sorted(SORTS))}"})
        order = params.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise ApiProblem(400, "invalid_request", "Invalid order", {"field": "order", "reason": "asc or desc"})
        search = (params.get("search") or "").strip().lower()
        job_id = params.get("job_id")
        query = {k: params.get(k) for k in ("job_id", "score_min", "score_max", "status", "search", "created_after",
                                            "created_before", "sort", "order")}
        fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:12]

        def keep(lead: dict[str, Any]) -> bool:
            created = parse_iso(lead["created_at"], "created_at")
            return (
                (job_id is None or lead["job_id"] == job_id)
                and (score_min is None or lead["lead_score"] >= score_min)
                and (score_max is None or lead["lead_score"] <= score_max)
                and (not status or lead["lead_status"] == status)
                and (after is None or created > after)
                and (before is None or created < before)
                and (not search or any(search in str(lead.get(f) or "").lower()
                                       for f in ("email", "company_name", "phone")))
            )

        def key(lead: dict[str, Any]) -> tuple[Any, str]:
            value = {"created_at": lead["created_at"], "score": lead["lead_score"],
                     "company": str(lead.get("company_name") or "").lower()}[sort]
            return value, lead["id"]

        rows = sorted((lead for lead in self.leads.values() if keep(lead)), key=key, reverse=order == "desc")
        cursor = params.get("cursor")
        if cursor:
            position = decode_cursor(cursor, fingerprint)
            rows = [r for r in rows if (list(key(r)) > position if order == "asc" else list(key(r)) < position)]
        page, rest = rows[:limit], rows[limit:]
        next_cursor = encode_cursor(list(key(page[-1])), fingerprint) if rest and page else None
        if repeat_cursor and cursor and next_cursor:
            next_cursor = cursor  # a fault: a broken server handing out the same cursor again
        return {
            "data": [_list_view(lead) for lead in page],
            "pagination": {"has_more": bool(rest), "next_cursor": next_cursor},
        }


_DETAIL_ONLY = ("signals_detected", "enrichment_data", "facebook_url", "enriched_at")


def _list_view(lead: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in lead.items() if k not in _DETAIL_ONLY}


def encode_cursor(position: list[Any], fingerprint: str) -> str:
    raw = json.dumps({"p": position, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        position = data["p"]
        ok = data["q"] == fingerprint and isinstance(position, list) and len(position) == 2
    except (binascii.Error, ValueError, KeyError, TypeError):
        ok, position = False, []
    if not ok:
        raise ApiProblem(400, "invalid_request", "Invalid cursor",
                         {"field": "cursor", "reason": "Not a cursor from this query"})
    return list(position)
