"""The source seam end to end: a source that exists only in this file gets `import <it>` (with the
common options, its own typed options and its job-file keys) from its registry entry alone.

The source reads leads from an in-memory list; the CLI runs in-process (the registry entry is added
here) against the LeadGenius sandbox over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from etl import sources
from etl.cli import app
from etl.jobs import JobSpec
from etl.sources import SourceBatch, SourceCommand, SourceKind, SourceOption
from tests.cli_helpers import cli_env
from tests.integration.helpers import email_counts, stored

LEADS = [
    {"email": f"seam{i}@example.com", "firstName": f"Seam{i}", "lastName": "Test", "companyName": "Seam Co",
     "tier": "gold" if i % 2 else "silver"}
    for i in range(5)
]

# The whole cost of a fifth source's command: this entry (its reader is `job_source` below).
MEMORY = SourceKind(
    "memory", __name__, "csv", summary="leads held in memory (a test source)",
    command=SourceCommand("Import leads held in memory into a client (a test source).", (
        SourceOption("tier", help="Only leads of this tier."),
        SourceOption("limit", int, "Read at most N leads.", min=1),
    )),
)


class MemorySource:
    def __init__(self, tier: str | None, limit: int | None) -> None:
        self.name = "memory"
        self.rows = [lead for lead in LEADS if tier is None or lead["tier"] == tier][:limit]

    def batches(self) -> Iterator[SourceBatch]:
        frame = pl.DataFrame(self.rows, schema=dict.fromkeys(LEADS[0], pl.String))
        yield SourceBatch(frame.insert_column(0, pl.Series("_row", range(1, frame.height + 1), pl.Int64)))


def job_source(spec: JobSpec, settings: Any, mapping: Any) -> MemorySource:
    limit = spec.params.get("limit")
    return MemorySource(spec.params.get("tier"), int(limit) if limit is not None else None)


@pytest.fixture
def memory_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sources.SOURCES, "memory", MEMORY)


def test_a_registry_entry_alone_gives_a_source_its_import_command(memory_source, lg_sandbox, tmp_path: Path) -> None:
    runner = CliRunner()
    env = cli_env(lg_sandbox.base_url, tmp_path, api_key=False)

    listed = runner.invoke(app, ["import", "--help"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "Import leads held in memory into a client" in listed.output
    own = runner.invoke(app, ["import", "memory", "--help"], env={"COLUMNS": "200"})
    for option in ("--client", "--tier", "--limit", "Read at most N leads.", "--dry-run", "--report", "--strict"):
        assert option in own.output, option

    bad = runner.invoke(app, ["import", "memory", "--client", "Seam Test", "--limit", "0"], env=env)
    assert bad.exit_code == 2  # typed: --limit has min=1

    report = tmp_path / "report.json"
    run = runner.invoke(app, ["import", "memory", "--client", "Seam Test", "--tier", "gold", "--limit", "1",
                              "--report", str(report), "--quiet"], env=env)
    assert run.exit_code == 0, run.output
    assert email_counts(stored(lg_sandbox, "seam-test")) == {"seam1@example.com": 1}
    data = json.loads(report.read_text())
    assert data["source"] == "memory" and data["counts"]["created"] == 1 and data["counts"]["confirmed"] == 1

    again = runner.invoke(app, ["import", "memory", "--client", "Seam Test", "--tier", "gold", "--quiet"], env=env)
    assert again.exit_code == 0, again.output
    assert email_counts(stored(lg_sandbox, "seam-test")) == {"seam1@example.com": 1, "seam3@example.com": 1}


def test_its_options_are_job_file_keys_too(memory_source, lg_sandbox, tmp_path: Path) -> None:
    job = tmp_path / "memory.toml"
    job.write_text('source = "memory"\nclient = "Seam Test"\ntier = "silver"\nlimit = 2\n')
    assert JobSpec.load(job).params == {"tier": "silver", "limit": 2}
    run = CliRunner().invoke(app, ["sync", str(job), "--quiet"], env=cli_env(lg_sandbox.base_url, tmp_path,
                                                                             api_key=False))
    assert run.exit_code == 0, run.output
    assert email_counts(stored(lg_sandbox, "seam-test")) == {"seam0@example.com": 1, "seam2@example.com": 1}
