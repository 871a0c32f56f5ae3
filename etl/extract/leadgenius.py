"""Extract leads from LeadGenius itself, through the API-key bulk list (SPEC A4), 5,000 per page.

Used by `import leadgenius` (LeadGenius → LeadGenius migration: another client, another tenant or
another deployment). Each page becomes one `SourceBatch`; nothing is held beyond the current page.
Server-set fields (`id`, `owner`, `company_id`, `createdAt`, `updatedAt`) are dropped, and so is the
source `client_id`: the target sets its own, and sending any of them on create is a 500 (SPEC A3).
AI fields and notes are lead fields, so they travel as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx
import polars as pl

from etl.config import Settings
from etl.errors import UsageError
from etl.fields import LEAD_FIELDS
from etl.load.api import LeadGeniusApi
from etl.load.auth import with_bulk_credentials
from etl.report import no_rejects
from etl.sources import SourceBatch

if TYPE_CHECKING:
    from etl.jobs import JobSpec
    from etl.mapping import Mapping

Table = Literal["enrich", "source"]

# Everything a new lead may carry, minus client_id (set from --client by the run).
MIGRATED_FIELDS: tuple[str, ...] = tuple(f for f in LEAD_FIELDS if f != "client_id")


def migration_frame(items: Sequence[dict[str, Any]], first_row: int) -> pl.DataFrame:
    """Pure: one bulk page -> `_row` (1-based, running across pages) + the lead fields, all String."""
    schema = {f: pl.String for f in MIGRATED_FIELDS}
    frame = pl.from_dicts(items, schema=schema, strict=False) if items else pl.DataFrame(schema=schema)
    rows = pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64, eager=True).alias("_row")
    return frame.insert_column(0, rows)


async def resolve_company_id(api: LeadGeniusApi, company_id: str | None) -> str:
    """`--company-id` when given, else the logged-in user's company (GET /api/company, Bearer)."""
    if company_id:
        return company_id
    keeper = api.keeper
    if keeper.tokens is None and not (keeper.email and keeper.password):
        raise UsageError(
            "--company-id is required: no LeadGenius login to look it up with "
            "(run `leadgenius-etl auth login`, or set LEADGENIUS_EMAIL and LEADGENIUS_PASSWORD)"
        )
    found = (await api.company()).get("company_id")
    if not found:
        raise UsageError("LeadGenius did not say which company this login belongs to; pass --company-id")
    return str(found)


@dataclass
class LeadGeniusBulkSource:
    """A pipeline `Source` reading one company (optionally one client) of a LeadGenius deployment."""

    settings: Settings
    company_id: str | None = None
    client_id: str | None = None
    table: Table = "enrich"
    page_size: int = 5000
    rate: float | None = None
    transport: httpx.AsyncBaseTransport | None = None
    name: str = field(init=False)
    requests: dict[str, Any] = field(default_factory=dict, init=False)
    resolved_company_id: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.settings = with_bulk_credentials(self.settings)
        if not self.settings.api_key:
            # Checked before anything touches the network, so a bad invocation exits 2 at once.
            raise UsageError(
                "reading LeadGenius in bulk needs an API key: set LEADGENIUS_API_KEY and LEADGENIUS_USER_ID "
                "(or add api_key and user_id to the auth file)"
            )
        what = self.client_id or "all clients"
        self.name = f"leadgenius:{self.table}:{what}"

    def api_requests(self) -> dict[str, Any]:
        """etl.sources.source_requests: the bulk reads (the target's requests are the report's `requests`)."""
        return {"api": "LeadGenius", "total": 0, **self.requests}

    async def abatches(self) -> AsyncIterator[SourceBatch]:
        """One batch per bulk page. A repeated nextToken raises `PaginationLoop` (never loops)."""
        rejects = no_rejects()
        async with LeadGeniusApi(self.settings, transport=self.transport, concurrency=1, rate_per_min=self.rate) as api:
            company_id = await resolve_company_id(api, self.company_id)
            self.resolved_company_id = company_id
            next_row = 1
            async for page in api.iter_bulk(
                company_id, client_id=self.client_id, table=self.table, page_size=self.page_size
            ):
                frame = migration_frame(page, next_row)
                next_row += frame.height
                self.requests = api.stats.to_dict()
                yield SourceBatch(frame, rejects, counters={"source_pages": 1})
                del page, frame
            self.requests = api.stats.to_dict()


__all__ = [
    "MIGRATED_FIELDS", "LeadGeniusBulkSource", "job_source", "migration_frame", "resolve_company_id",
    "with_bulk_credentials",
]


def job_source(spec: JobSpec, settings: Settings, mapping: Mapping) -> LeadGeniusBulkSource:
    """The source a `source = "leadgenius"` job file describes (`company_id`, `source_client`, `table`)."""
    table = str(spec.params.get("table", "enrich"))
    if table not in ("enrich", "source"):
        raise UsageError(f"job {spec.name}: table must be enrich or source, not {table!r}")
    company = spec.params.get("company_id")
    client = spec.params.get("source_client")
    return LeadGeniusBulkSource(settings, company_id=str(company) if company else None,
                                client_id=str(client) if client else None, table=table)  # type: ignore[arg-type]
