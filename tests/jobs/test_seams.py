"""The source seams: the registry, the job file, the incremental mark decision, shared CLI options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etl.cli import app
from etl.errors import ConfigError, UsageError
from etl.jobs import COMMON_JOB_KEYS, JobSpec, next_mark, parse_duration
from etl.mapping import Mapping
from etl.sources import SOURCES, source_kind

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_every_registered_source_has_its_module_mapping_and_entry_point() -> None:
    for kind in SOURCES.values():
        module = kind.load()
        Mapping.builtin(kind.mapping)  # ships a mapping
        entry = "incremental" if kind.incremental else "job_source"
        assert callable(getattr(module, entry)), (kind.name, entry)
        assert not kind.job_keys & COMMON_JOB_KEYS, kind.name


def test_unknown_source_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match='"csv", "hubspot", "leadgenius", "leadscraper"'):
        source_kind("salesforce")


def test_mark_moves_only_forward_only_when_confirmed_and_never_past_the_run_start() -> None:
    newest = T0 - timedelta(minutes=5)
    assert next_mark(None, newest, T0, confirmed=True) == newest
    assert next_mark(None, newest, T0, confirmed=False) is None
    assert next_mark(None, None, T0, confirmed=True) is None  # nothing read: keep
    assert next_mark(newest, newest - timedelta(hours=1), T0, confirmed=True) is None  # lookback re-read
    assert next_mark(newest, newest, T0, confirmed=True) is None
    future = T0 + timedelta(hours=3)  # a source clock ahead of ours
    assert next_mark(newest, future, T0, confirmed=True) == T0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("PT10M", 600), ("P1DT1H", 90000)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_a_bad_duration_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("ten minutes")


def test_job_file_keys_are_checked_per_source(tmp_path: Path) -> None:
    job = tmp_path / "j.toml"
    job.write_text('source = "leadgenius"\nclient = "Acme"\ncompany_id = "c-1"\ntable = "source"\n')
    spec = JobSpec.load(job)
    assert spec.params == {"company_id": "c-1", "table": "source"}
    job.write_text('source = "leadscraper"\nclient = "Acme"\nscore_min = 70\nstatus = "hot"\nlookback = "10m"\n')
    spec = JobSpec.load(job)
    assert spec.params == {"score_min": 70, "status": "hot"} and spec.lookback_delta() == timedelta(minutes=10)
    job.write_text('source = "csv"\nclient = "Acme"\npath = "x.csv"\nscore_min = 70\n')
    with pytest.raises(ConfigError, match=r"unknown key.*score_min.*for a csv job"):
        JobSpec.load(job)
    job.write_text('source = "hubspot"\nclient = "Acme"\nlookback = "soon"\n')
    with pytest.raises(ConfigError, match="lookback: 'soon' is not a duration"):
        JobSpec.load(job)


@pytest.mark.parametrize("command", sorted(SOURCES))
def test_every_import_command_takes_the_common_options(command: str) -> None:
    import typer

    imports = typer.main.get_command(app).commands["import"]  # type: ignore[attr-defined]
    options = {opt for param in imports.commands[command].params for opt in param.opts}
    for option in ("--mapping", "--mode", "--dry-run", "--report", "--rejects", "--report-html", "--rate",
                   "--concurrency", "--strict", "--quiet", "--base-url", "--auth-file", "--state",
                   "--allow-insecure-http"):
        assert option in options, (command, option)
