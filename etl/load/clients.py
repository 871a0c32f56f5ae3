"""Client resolution (quirk 5, the invisible leads): leads always carry the slug, never the UUID."""

from __future__ import annotations

from typing import Any

from etl.errors import SkippableApiError, UsageError
from etl.load.api import LeadGeniusApi
from etl.log import get_logger
from etl.slug import looks_like_uuid, slugify


def match_client(clients: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    """Pure: by slug, then by name (case-insensitive), then by the slug of the name, then by UUID."""
    value = wanted.strip()
    hits = [c for c in clients if c.get("client_id") == value]
    hits = hits or [c for c in clients if str(c.get("clientName") or "").casefold() == value.casefold()]
    if hits:
        return hits[0]
    slug = slugify(value)
    hits = [c for c in clients if c.get("client_id") == slug]
    if hits:
        return hits[0]
    if looks_like_uuid(value):
        hits = [c for c in clients if str(c.get("id", "")).lower() == value.lower()]
        if hits:
            return hits[0]
    return None


async def resolve_client(api: LeadGeniusApi, wanted: str, *, create: bool) -> dict[str, Any] | None:
    """Find the client (slug, name, UUID) or create it; None only when missing and create=False."""
    log = get_logger(stage="client")
    if not wanted.strip():
        raise UsageError("--client is empty")
    client = match_client(await api.list_clients(), wanted)
    if client is not None:
        if looks_like_uuid(wanted.strip()) and client.get("id", "").lower() == wanted.strip().lower():
            log.warning("client UUID given; using its slug so the leads stay visible", slug=client["client_id"])
        return client
    if looks_like_uuid(wanted.strip()):
        raise UsageError(f"no client has the UUID {wanted.strip()}; pass the client's name or slug")
    if not slugify(wanted):
        raise UsageError(f"--client {wanted!r} has no letters or digits to make a slug from")
    if not create:
        return None
    try:
        client = await api.create_client(wanted.strip())
    except SkippableApiError as exc:
        if exc.status != 409:
            raise
        # Created meanwhile by someone else: the slug is taken, so it is ours to use.
        client = match_client(await api.list_clients(), slugify(wanted))
        if client is None:
            raise
    log.info("client created", slug=client["client_id"], name=client.get("clientName"))
    return client
