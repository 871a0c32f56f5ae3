"""Row-by-row baseline: the same rules as etl.transform, written the way the seeds' scripts do
it (csv.DictReader, one dict per row, Python string methods). Used only by the benchmark to
show what vectorising buys; never imported by the package.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from etl.mapping import Mapping, normalise_header
from etl.transform.steps import ROLE_WORDS

EMAIL_RE = re.compile(
    r"^[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$"
)
NAME_PARTS_RE = re.compile(r"^([^\W\d_]{2,})[._-]([^\W\d_]{2,})$")
ROLES = set(ROLE_WORDS)
FIELDS = ("firstName", "lastName", "email", "phoneNumber", "title", "companyName", "companyDomain",
          "linkedinUrl", "notes", "aiLeadScore", "source")  # fmt: skip


def _usable(name: str | None) -> bool:
    return bool(name) and any(ch.isalnum() for ch in name or "")


def run(path: str | Path, mapping: Mapping, client_id: str) -> dict[str, int]:
    """Read, transform, dedupe and check every row; return the counts."""
    counts = {"extracted": 0, "valid": 0, "rejected": 0, "duplicates": 0}
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        by_norm: dict[str, list[str]] = {}
        for col in header:
            by_norm.setdefault(normalise_header(col), []).append(col)

        def cols(aliases: tuple[str, ...]) -> list[str]:
            return [c for a in aliases for c in by_norm.get(normalise_header(a), [])]

        sources = {f: cols(mapping.fields.get(f, ())) for f in FIELDS}
        ai = {k: cols(v) for k, v in mapping.ai_notes.items()}
        for row in reader:
            counts["extracted"] += 1
            if None in row or any(v is None for v in row.values()):
                counts["rejected"] += 1  # ragged
                continue
            clean = {k: v.strip() for k, v in row.items()}
            lead: dict[str, Any] = {"client_id": client_id}
            for f, src in sources.items():
                value = next((clean[c] for c in src if clean[c]), None)
                if value is None and f in mapping.constants:
                    value = mapping.constants[f]
                lead[f] = value
            if not any(clean.values()):
                counts["rejected"] += 1
                continue
            email = (lead.get("email") or "").lower()
            if email.startswith("mailto:"):
                email = email[7:]
            if not email or not EMAIL_RE.match(email):
                counts["rejected"] += 1
                continue
            lead["email"] = email
            m = NAME_PARTS_RE.match(email.split("@")[0].split("+")[0])
            first, last = lead.get("firstName"), lead.get("lastName")
            ok = m is not None and m.group(1) not in ROLES and m.group(2) not in ROLES
            if not _usable(first):
                good = ok and m is not None and (not _usable(last) or (last or "").lower() == m.group(2))
                lead["firstName"] = m.group(1).title() if good and m else "-"
            if not _usable(last):
                good = ok and m is not None and (not _usable(first) or (first or "").lower() == m.group(1))
                lead["lastName"] = m.group(2).title() if good and m else "-"
            ai_vals = {k: next((clean[c] for c in src if clean[c]), None) for k, src in ai.items()}
            notes = [lead["notes"]] if lead.get("notes") else []
            block = []
            if ai_vals.get("score") or ai_vals.get("score_100"):
                block.append(f"## 🎯 AI SCORE: {ai_vals.get('score')} ({ai_vals.get('score_100')}/100)")
            for key, heading in (("justification", "### 🧐 JUSTIFICATION"),
                                 ("recommendations", "### 💡 STRATEGIC RECOMMENDATIONS"),
                                 ("sdr_synthesis", "### 📝 SDR SYNTHESIS")):  # fmt: skip
                if ai_vals.get(key):
                    block.append(f"{heading}\n{ai_vals[key]}")
            if block:
                notes.append("\n".join(block))
            lead["notes"] = "\n\n".join(notes) or None
            if email in seen:
                counts["duplicates"] += 1
                continue
            seen.add(email)
            payload = {k: v for k, v in lead.items() if v is not None}
            if all(isinstance(v, str) and v.strip() == v and v for v in payload.values()):
                counts["valid"] += 1
            else:
                counts["rejected"] += 1
    return counts
