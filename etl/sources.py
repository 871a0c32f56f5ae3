"""Adapters from each extractor to the pipeline's Source protocol."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from etl.extract.csv import BATCH_ROWS
from etl.pipeline import SourceBatch
from etl.report import no_rejects

if TYPE_CHECKING:
    from etl.extract.hubspot import ArchivedContact, Merge


@dataclass
class CsvFileSource:
    path: Path
    batch_rows: int = BATCH_ROWS

    def __post_init__(self) -> None:
        from etl.extract.csv import open_csv

        # Opening sniffs the file: a missing, empty, header-only or binary file fails here, before
        # anything touches the network.
        self._csv = open_csv(self.path)
        self.name = f"csv:{self.path.name}"

    def batches(self) -> Iterator[SourceBatch]:
        for batch in self._csv.batches(self.batch_rows):
            yield SourceBatch(batch.frame, batch.rejects)

    @property
    def columns(self) -> list[str]:
        """The header as the reader names it (repeated names renamed `X_2`)."""
        return list(self._csv.columns)

    def sample(self, rows: int = 500) -> pl.DataFrame:
        """About the first `rows` readable records (no `_row`), for format detection."""
        batches = self._csv.batches(rows * 8)  # the first batch is an eighth of the size
        try:
            first = next(batches, None)
        finally:
            batches.close()  # type: ignore[attr-defined]  # a generator: stops its parse worker
        if first is None:
            return pl.DataFrame(schema=dict.fromkeys(self.columns, pl.String))
        return first.frame.drop("_row").head(rows)


@dataclass
class HubSpotSource:
    """HubSpot contacts (full, or changed since a high-water mark) with their primary company.

    Besides the frames it keeps what a sync acts on after the import: the archived contacts and the
    merge survivors it read, the e-mail keys of the live contacts it read, and HubSpot's clock."""

    access_token: str
    host: str
    since: datetime | None = None
    archived_since: datetime | None = None  # a full read also lists the contacts archived after it

    def __post_init__(self) -> None:
        from etl.extract.hubspot import HubSpotExtractor

        self.extractor = HubSpotExtractor(self.access_token, host=self.host)
        self.name = "hubspot" if self.since is None else "hubspot:incremental"
        self.archived: list[ArchivedContact] = []
        self.merges: list[Merge] = []
        self.live_emails: list[str] = []
        self.newest: str | None = None  # the newest lastmodifieddate read (HubSpot's ISO text)

    def batches(self) -> Iterator[SourceBatch]:
        from etl.extract.hubspot import iso_to_ms

        ex = self.extractor
        it = ex.full(archived_since=self.archived_since) if self.since is None else ex.changed_since(self.since)
        for batch in it:
            status = batch.frame.get_column("company_status") if batch.frame.height else None
            info: dict[str, Any] = {
                "company_deleted": int((status == "deleted").sum()) if status is not None else 0,
                "no_company": int((status == "none").sum()) if status is not None else 0,
                "refreshed_for_company": batch.refreshed,
                "changed_companies": batch.changed_companies,
            }
            if batch.max_modified:
                info["max_modified"] = batch.max_modified
                if self.newest is None or iso_to_ms(batch.max_modified) > iso_to_ms(self.newest):
                    self.newest = batch.max_modified
            self.archived.extend(batch.archived_contacts)
            self.merges.extend(batch.merges)
            if batch.frame.height:
                self.live_emails.extend(e for e in batch.frame.get_column("email").to_list() if e)
            yield SourceBatch(batch.frame, no_rejects(), info)

    @property
    def requests(self) -> dict[str, int]:
        return dict(self.extractor.stats)

