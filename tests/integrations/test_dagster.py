"""The Dagster integration, in process with Dagster's own test API (`materialize`), against the sandbox
and a real PostgreSQL state shared by the materialisations."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

dg = pytest.importorskip("dagster", reason="the Dagster extra is not installed: pip install -e '.[dagster]'")

from etl.errors import ConfigError, JobLocked  # noqa: E402
from etl.integrations.dagster import asset_name, job_asset, job_definitions  # noqa: E402
from etl.state import open_state  # noqa: E402
from tests.integration.helpers import email_counts, people, settings_for, stored, write_csv  # noqa: E402

pytestmark = pytest.mark.dagster


def csv_job(tmp_path: Path, n: int, *, name: str = "acme-nightly", extra: str = "") -> Path:
    write_csv(tmp_path / "leads.csv", people(n))
    job = tmp_path / f"{name}.toml"
    job.write_text(f'[job]\nname = "{name}"\nsource = "csv"\npath = "leads.csv"\nclient = "Acme Corp"\n'
                   f'concurrency = 4\n{extra}')
    return job


def failure_text(result: Any) -> str:
    """Every message and cause of the run's failed steps, flattened."""
    texts = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def test_a_materialisation_runs_the_job_and_reports_its_counts(lg_sandbox, pg_url: str, tmp_path: Path) -> None:
    asset = job_asset(csv_job(tmp_path, 40), settings=lambda spec: settings_for(lg_sandbox.base_url, tmp_path,
                                                                                 state=pg_url))
    result = dg.materialize([asset])
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (meta["created"], meta["confirmed"], meta["missing"], meta["exit_code"]) == (40, 40, 0, 0)
    assert len(email_counts(stored(lg_sandbox, "acme-corp"))) == 40
    with open_state(settings_for(lg_sandbox.base_url, tmp_path, state=pg_url)) as state:
        (run,) = state.runs()  # the run is in the shared state, with the id the metadata shows
    assert run["run_id"] == meta["run_id"] and run["job"] == "acme-nightly"


def job_lock_held(pg_url: str) -> bool:
    import psycopg

    from etl.state.postgres import lock_ids, lock_key

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                           " AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                           lock_ids(lock_key("acme-nightly"))).fetchone()
    return bool(row and row[0])


def test_two_materialisations_at_once_give_one_run_and_one_job_locked(lg_sandbox, pg_url: str, tmp_path: Path) -> None:
    # The first run's client lookup takes 5 s, so it surely holds the job's lock while the second starts.
    lg_sandbox.fault("slow", next=1, route="GET /api/clients", slow_ms=5000)
    asset = job_asset(csv_job(tmp_path, 60), max_retries=0,
                      settings=lambda spec: settings_for(lg_sandbox.base_url, tmp_path, state=pg_url))
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.update(first=dg.materialize([asset], raise_on_error=False)))
    first.start()
    deadline = time.monotonic() + 60
    while not job_lock_held(pg_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = dg.materialize([asset], raise_on_error=False)
    first.join(120)
    assert results["first"].success and not second.success
    assert "already running" in failure_text(second) and "JobLocked" in failure_text(second)
    counts = email_counts(stored(lg_sandbox, "acme-corp"))
    assert len(counts) == 60 and set(counts.values()) == {1}
    with open_state(settings_for(lg_sandbox.base_url, tmp_path, state=pg_url)) as state:
        assert len(state.runs()) == 1  # the locked one touched nothing, not even the run history


def test_a_locked_materialisation_is_retried_once_the_lock_is_free(lg_sandbox, pg_url: str, tmp_path: Path,
                                                                   monkeypatch) -> None:
    import etl.integrations.dagster as integration

    job = csv_job(tmp_path, 30)
    settings = settings_for(lg_sandbox.base_url, tmp_path, state=pg_url)
    asset = job_asset(job, settings=settings, max_retries=3, retry_wait_s=0.2)
    holder = open_state(settings)
    lock = holder.job_lock("acme-nightly")
    lock.__enter__()  # another worker holds the job ...
    attempts: list[str] = []

    def run_job(spec: Any, settings: Any) -> Any:
        try:
            report = real_run_job(spec, settings)
        except JobLocked:
            attempts.append("locked")
            lock.__exit__(None, None, None)  # ... and finishes after the first attempt was refused
            holder.close()
            raise
        attempts.append("ran")
        return report

    real_run_job = integration.run_job
    monkeypatch.setattr(integration, "run_job", run_job)
    result = dg.materialize([asset])
    assert result.success and attempts == ["locked", "ran"]
    assert result.retry_attempts_for_node(asset.op.name) == 1
    meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert meta["created"] == 30 and meta["exit_code"] == 0


def test_exit_1_fails_the_materialisation_with_the_counts(lg_sandbox, pg_url: str, tmp_path: Path) -> None:
    job = csv_job(tmp_path, 10, extra="strict = true\n")
    with (tmp_path / "leads.csv").open("a") as fh:
        fh.write("Bad,Row,not-an-email,Co,co.com,,,,\n")  # rejected; strict turns a reject into exit 1
    asset = job_asset(job, settings=settings_for(lg_sandbox.base_url, tmp_path, state=pg_url), max_retries=5)
    result = dg.materialize([asset], raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "exit 1" in failure.step_failure_data.error.message
    assert failure.step_failure_data.user_failure_data.metadata["rejected"].value == 1
    assert result.retry_attempts_for_node(asset.op.name) == 0  # not retried: running again cannot fix it
    assert len(stored(lg_sandbox, "acme-corp")) == 10


def test_job_definitions_build_assets_jobs_and_schedules(tmp_path: Path) -> None:
    csv_job(tmp_path, 1, name="hubspot:acme", extra='\n[schedule]\ncron = "*/10 * * * *"\ntimezone = "Europe/Berlin"\n')
    csv_job(tmp_path, 1, name="csv-once")
    defs = job_definitions(tmp_path)
    assert asset_name("hubspot:acme") == "hubspot_acme"
    assert {key.to_user_string() for key in defs.resolve_all_asset_keys()} == {
        "leadgenius/hubspot_acme", "leadgenius/csv_once"}
    schedule = defs.resolve_schedule_def("hubspot_acme_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "*/10 * * * *", "Europe/Berlin", "hubspot_acme_job")
    assert defs.resolve_job_def("csv_once_job") is not None
    assert len(list(defs.schedules or [])) == 1


@pytest.mark.parametrize(("schedule", "words"), [
    ('cron = "every ten minutes"', "cron"),
    ('cron = "*/5 * * * *"\ntimezone = "Mars/Base"', "timezone"),
    ('cron = "*/5 * * * *"\nevery = 5', "unknown key"),
    ("timezone = \"UTC\"", "needs cron"),
])
def test_a_bad_schedule_is_a_config_error_at_load_time(tmp_path: Path, schedule: str, words: str) -> None:
    csv_job(tmp_path, 1, extra=f"\n[schedule]\n{schedule}\n")
    with pytest.raises(ConfigError, match=words):
        job_definitions(tmp_path)
