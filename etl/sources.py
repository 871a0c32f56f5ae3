"""Adapters from each extractor to the pipeline's Source protocol."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from etl.pipeline import SourceBatch


@dataclass
class CsvFileSource:
    path: Path
    batch_rows: int = 100_000

    def __post_init__(self) -> None:
        from etl.extract.csv import open_csv

        # Opening sniffs the file: a missing, empty, header-only or binary file fails here, before
        # anything touches the network.
        self._csv = open_csv(self.path)
        self.name = f"csv:{self.path.name}"

    def batches(self) -> Iterator[SourceBatch]:
        for batch in self._csv.batches(self.batch_rows):
            yield SourceBatch(batch.frame, batch.rejects)
