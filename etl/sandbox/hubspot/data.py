"""Deterministic, adversarial CRM data for the HubSpot sandbox.

What real portals look like, and what broke the seed scripts: contacts without e-mail, the same
e-mail in another case, blank or dot-only names (seed bug #6), phone vs mobilephone only (bug #3's
neighbourhood), a contact `company` property that is empty or disagrees with the associated company
(bug #5), several companies per contact with one primary, unicode names, e-mails with spaces.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FIRST = (
    "John", "Maria", "Wei", "Aisha", "Lars", "Sofia", "Kenji", "Olga", "Pedro", "Fatima", "Liam", "Emma",
    "Noah", "Chloé", "Zoë", "José", "Łukasz", "Søren", "Björn", "Ana-María", "O'Neil", "Nguyễn", "Δημήτρης",
    "Анна", "李", "さくら", "Jean-Luc", "Renée", "Dvořák", "Ngozi",
)  # fmt: skip
LAST = (
    "Smith", "García", "Chen", "Khan", "Jensen", "Rossi", "Tanaka", "Ivanova", "Silva", "Haddad", "Murphy",
    "Müller", "Øster", "D'Angelo", "van der Berg", "Nakamura-Lee", "Wójcik", "Παπαδόπουλος", "Смирнов",
    "王", "O'Brien", "de la Cruz", "Łęcki", "Çelik", "Ibáñez",
)  # fmt: skip
COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Pied Piper", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Wonka", "Gringotts", "Nakatomi", "Oceanic", "Dunder", "Massive",
    "Nordhavn", "Zürich Re", "Société Générale", "Łódź Tech", "東京 Systems",
)  # fmt: skip
COMPANY_SUFFIX = ("Inc", "GmbH", "Ltd", "SA", "LLC", "AB", "BV", "Corp", "Group", "Labs")
JOB_TITLES = (
    "VP Sales", "Head of Growth", "CTO", "Marketing Manager", "SDR", "Account Executive", "CEO", "Founder",
    "RevOps Lead", "Directeur Commercial", "Einkaufsleiter", "Data Engineer", "", "Office Manager",
)  # fmt: skip
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")
LEAD_STATUS = ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED")
INDUSTRY = ("COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "RETAIL", "MARKETING_AND_ADVERTISING")
DOMAINS = ("gmail.com", "outlook.com", "yahoo.fr", "web.de", "proton.me")

DAY_MS = 86_400_000


@dataclass
class CompanySpec:
    props: dict[str, str | None]
    created_ms: int
    modified_ms: int


@dataclass
class ContactSpec:
    props: dict[str, str | None]
    created_ms: int
    modified_ms: int
    companies: list[int] = field(default_factory=list)
    primary: int | None = None


def _ascii_slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum()) or "x"


def generate_companies(rng: random.Random, n: int, *, now_ms: int, adversarial: bool) -> Iterator[CompanySpec]:
    for i in range(n):
        word = rng.choice(COMPANY_WORDS)
        name = f"{word} {rng.choice(COMPANY_SUFFIX)} {i}"
        domain: str | None = f"{_ascii_slug(word)}{i}.{rng.choice(('com', 'io', 'de', 'co.uk', 'fr'))}"
        if adversarial:
            r = rng.random()
            if r < 0.05:
                domain = None  # companies without a website
            elif r < 0.08:
                domain = f"https://www.{domain}/"  # pasted URL instead of a domain
            elif r < 0.10:
                name = f"  {name}  "  # stray whitespace
        created = now_ms - rng.randint(400, 1500) * DAY_MS - rng.randint(0, DAY_MS)
        yield CompanySpec({"name": name, "domain": domain}, created, created + rng.randint(0, 300) * DAY_MS)


def generate_contacts(
    rng: random.Random, n: int, company_ids: Sequence[int], *, now_ms: int, adversarial: bool
) -> Iterator[ContactSpec]:
    """`n` contacts; lastmodifieddate values are shared by import-sized groups (ties matter)."""
    emails: list[str] = []
    group_left = 0
    modified = now_ms - 365 * DAY_MS
    for i in range(n):
        first = rng.choice(FIRST)
        last = rng.choice(LAST)
        email: str | None = f"{_ascii_slug(first)}.{_ascii_slug(last)}{i}@{rng.choice(DOMAINS)}"
        phone: str | None = None
        mobile: str | None = None
        company_prop: str | None = None
        r_phone = rng.random()
        if r_phone < 0.4:
            phone = f"+1 415 555 {rng.randint(0, 9999):04d}"
        elif r_phone < 0.6:
            mobile = f"+44 7700 {rng.randint(0, 999999):06d}"
        elif r_phone < 0.7:
            phone = f"(030) {rng.randint(1000000, 9999999)}"
            mobile = f"+49 151 {rng.randint(1000000, 9999999)}"
        companies: list[int] = []
        primary: int | None = None
        r_co = rng.random()
        if company_ids and r_co >= 0.15:  # 15% without any company
            k = min(len(company_ids), 1 if r_co < 0.75 else rng.randint(2, 3))
            companies = [rng.choice(company_ids)]
            while len(companies) < k:
                extra = rng.choice(company_ids)
                if extra not in companies:
                    companies.append(extra)
            rng.shuffle(companies)  # the primary is not always listed first
            primary = rng.choice(companies)
            if adversarial and rng.random() < 0.03:
                primary = None  # associated, but nobody set a primary
        if adversarial:
            r = rng.random()
            if r < 0.08:
                email = None
            elif r < 0.11 and emails:
                email = rng.choice(emails).upper()  # duplicate e-mail, other case
            elif r < 0.13:
                email = f" {email} " if rng.random() < 0.5 else str(email).replace("@", " @")  # spaces
            r = rng.random()
            if r < 0.05:
                first = ""
            elif r < 0.08:
                first = "   "
            r = rng.random()
            if r < 0.04:
                last = "."  # seed bug #6
            elif r < 0.07:
                last = ""
            elif r < 0.09:
                last = " \t"
            r = rng.random()
            if r < 0.15:
                company_prop = f"{rng.choice(COMPANY_WORDS)} (typed by hand)"  # disagrees with the association
            elif r < 0.2:
                company_prop = ""
            # else: None — seed bug #5, the contact's own `company` is almost always empty
        if email is not None:
            emails.append(email.strip())
        if group_left <= 0:
            modified += rng.randint(1, 3 * DAY_MS // 100)
            group_left = rng.choice((1, 1, 2, 5, 20, 120, 400))  # imports and workflows write in bulk
        group_left -= 1
        created = modified - rng.randint(0, 200) * DAY_MS
        yield ContactSpec(
            {
                "firstname": first,
                "lastname": last,
                "email": email,
                "phone": phone,
                "mobilephone": mobile,
                "jobtitle": rng.choice(JOB_TITLES) or None,
                "lifecyclestage": rng.choice(LIFECYCLE),
                "hs_lead_status": rng.choice(LEAD_STATUS) if rng.random() < 0.7 else None,
                "industry": rng.choice(INDUSTRY) if rng.random() < 0.5 else None,
                "company": company_prop,
            },
            created,
            modified,
            companies,
            primary,
        )


def summarise(contacts: Iterable[Any], companies: Mapping[int, Any]) -> dict[str, int]:
    """Counts of the planted quirks, for the seed response."""
    out: Counter[str] = Counter()
    lower_emails: Counter[str] = Counter()
    for c in contacts:
        p = c.props
        email = p.get("email")
        if not email:
            out["without_email"] += 1
        else:
            lower_emails[email.strip().lower()] += 1
            if email != email.strip() or " " in email:
                out["email_with_spaces"] += 1
        if (p.get("lastname") or "") == ".":
            out["dot_lastname"] += 1
        if not (p.get("firstname") or "").strip():
            out["blank_firstname"] += 1
        if p.get("phone") and not p.get("mobilephone"):
            out["phone_only"] += 1
        if p.get("mobilephone") and not p.get("phone"):
            out["mobile_only"] += 1
        if not c.companies:
            out["without_company"] += 1
        elif c.primary is None:
            out["companies_without_primary"] += 1
        if len(c.companies) > 1:
            out["several_companies"] += 1
        if c.primary is not None and companies[c.primary].deleted:
            out["primary_company_deleted"] += 1
        if p.get("company"):
            out["company_property_set"] += 1
    out["duplicate_emails"] = sum(n - 1 for n in lower_emails.values() if n > 1)
    return dict(out)
