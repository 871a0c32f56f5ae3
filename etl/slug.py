"""Client slugs: `"Acme Corp"` -> `acme-corp` (SPEC A2)."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def slugify(name: str) -> str:
    """Lower-case ASCII; runs of other characters become one `-`; trimmed."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NON_ALNUM.sub("-", ascii_name.lower()).strip("-")


def looks_like_uuid(value: str) -> bool:
    """A client record UUID, which must never be used as a lead's client_id (quirk 5)."""
    return bool(_UUID.match(value.strip()))
