"""The SQLite backend: versioned schema, and a state.db made before versioning keeps working."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from etl.config import Settings
from etl.errors import UsageError
from etl.state import Outcome, open_state
from etl.state.sqlite import SCHEMA_VERSION

# A state.db written by a real import (12 leads, its run, a HubSpot mark) with the code before the
# schema was versioned, dumped as SQL so that the fixture is readable.
OLD_DUMP = Path(__file__).parent / "data" / "state_before_versioning.sql"


def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "old" / "state.db"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.executescript(OLD_DUMP.read_text())
    db.close()
    return path


def test_a_state_db_made_before_versioning_is_stamped_and_keeps_its_data(tmp_path: Path) -> None:
    path = old_db(tmp_path)
    raw = sqlite3.connect(path)
    assert not raw.execute("SELECT name FROM sqlite_master WHERE name='schema_version'").fetchall()
    target, client = raw.execute("SELECT target, client_id FROM leads LIMIT 1").fetchone()
    before = raw.execute("SELECT * FROM leads ORDER BY key").fetchall()
    raw.close()

    with open_state(Settings(state_path=path)) as state:
        assert state.schema_version() == SCHEMA_VERSION
        index = state.index(target, client)
        assert index.height == 12 and set(index["_l_status"]) == {"created"}
        assert state.get_mark("hubspot:acme", "hubspot.lastmodifieddate") == "2026-11-01T00:00:00Z"
        (run,) = state.runs()
        assert run["exit_code"] == 0 and run["counts"]["confirmed"] == 12
        # and it takes new writes
        run_id = state.start_run(command="import", source="csv", target=target, client_id=client, mode="insert",
                                 dry_run=False)
        state.record_intents(target, client, run_id, [("new@example.com", "pending_create", "h1", "{}")])
        state.record_outcome(target, client, Outcome("new@example.com", "created", "L-1", "h1"), ours=True)
        state.finish_run(run_id, exit_code=0, counts={"created": 1})

    raw = sqlite3.connect(path)
    assert raw.execute("SELECT * FROM leads WHERE key != 'new@example.com' ORDER BY key").fetchall() == before
    assert raw.execute("SELECT status, lead_id, ours FROM leads WHERE key='new@example.com'").fetchone() == (
        "created", "L-1", 1)
    assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    raw.close()
    with open_state(Settings(state_path=path)) as again:  # a second open migrates nothing
        assert again.schema_version() == SCHEMA_VERSION and len(again.runs()) == 2


def test_a_new_state_db_is_created_at_the_current_version(tmp_path: Path) -> None:
    with open_state(Settings(state_path=tmp_path / "deep" / "state.db")) as state:
        assert state.schema_version() == SCHEMA_VERSION
        assert state.is_empty() and state.runs() == []


def test_a_state_db_from_a_newer_release_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_state(Settings(state_path=path)).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(UsageError, match="newer than this leadgenius-etl knows"):
        open_state(Settings(state_path=path))
