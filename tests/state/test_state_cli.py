"""The state from the command line: a PostgreSQL URL, its password kept out of every output, moving state."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from etl.state.base import TABLES
from etl.state.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA
from tests.pg_server import PASSWORD
from tests.state.test_sqlite_state import old_db


def cli(*args: str, state: str | None = None, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LEADGENIUS", "HUBSPOT", "PG"))}
    if state:
        clean["LEADGENIUS_ETL_STATE"] = state
    return subprocess.run([sys.executable, "-m", "etl", *args], env=clean | (env or {}), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("leadgenius-etl: error: "), proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
    return lines[0]


def create_state(location: str) -> None:
    """What a first import or sync does to the state: create it."""
    from etl.config import Settings
    from etl.state import open_state

    open_state(Settings.from_env({}, state=location)).close()


def test_sslmode_in_the_url_is_honoured(pg_url: str) -> None:
    # The test server speaks no SSL: `require` must fail (not silently fall back), `disable` must work.
    create_state(pg_url)
    line = one_line_error(cli("state", "info", state=pg_url + "?sslmode=require"), 3)
    assert "SSL" in line and "postgresql://etl:***@127.0.0.1" in line
    assert cli("state", "info", state=pg_url + "?sslmode=disable").returncode == 0


def test_connection_failures_say_why_in_one_line_without_the_password(pg_server, pg_url: str) -> None:
    wrong = pg_url.replace(PASSWORD, "Wrong-password-42")
    line = one_line_error(cli("runs", state=wrong), 3)
    assert "password authentication failed" in line and "Wrong-password-42" not in line
    refused = f"postgresql://etl:{PASSWORD}@127.0.0.1:1/nope"
    assert "cannot connect to the state database postgresql://etl:***@127.0.0.1:1/nope" in one_line_error(
        cli("runs", state=refused), 3)
    assert "not a postgresql:// URL" in one_line_error(cli("runs", state=f"mysql://etl:{PASSWORD}@db/x"), 2)
    # the password in the query string is masked too
    query = f"postgresql://127.0.0.1:1/nope?user=etl&password={PASSWORD}"
    assert "password=***" in one_line_error(cli("runs", state=query), 3)


def test_runs_shows_the_url_masked(pg_url: str) -> None:
    create_state(pg_url)
    ok = cli("runs", state=pg_url)
    assert ok.returncode == 0, ok.stderr
    assert "etl:***@127.0.0.1" in ok.stdout and PASSWORD not in ok.stdout + ok.stderr


def test_migrate_sqlite_to_postgresql_and_back_keeps_every_row(pg_url: str, tmp_path: Path) -> None:
    laptop = old_db(tmp_path)  # a real state.db from before versioning, as a laptop user would have
    moved = cli("state", "migrate", "--to", pg_url, state=str(laptop))
    assert moved.returncode == 0, moved.stderr
    assert "copied 12 leads, 1 runs, 1 marks" in moved.stdout and PASSWORD not in moved.stdout
    info = cli("state", "info", state=pg_url)
    assert f"schema version {SQLITE_SCHEMA}, 12 leads, 1 runs, 1 marks" in info.stdout, info.stderr
    # a second copy into the same, now non-empty, destination is refused unless --merge
    assert "--merge" in one_line_error(cli("state", "migrate", "--to", pg_url, state=str(laptop)), 2)
    assert cli("state", "migrate", "--to", pg_url, "--merge", state=str(laptop)).returncode == 0
    back = tmp_path / "back" / "state.db"
    returned = cli("state", "migrate", "--to", str(back), state=pg_url)
    assert returned.returncode == 0, returned.stderr

    def rows(path: Path, table: str) -> list[tuple[object, ...]]:
        db = sqlite3.connect(path)
        try:
            return sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        finally:
            db.close()

    for table in TABLES:
        assert rows(back, table) == rows(laptop, table), table
    runs = cli("runs", "--json", state=str(back))
    assert json.loads(runs.stdout.splitlines()[0])["counts"]["confirmed"] == 12


def test_migrate_refuses_to_copy_a_state_onto_itself(tmp_path: Path, pg_url: str) -> None:
    db = str(tmp_path / "state.db")
    assert "names the state being copied" in one_line_error(cli("state", "migrate", "--to", db, state=db), 2)
    # the same database under another spelling (no password, another user, localhost) is the same place
    other_spelling = pg_url.replace("127.0.0.1", "localhost").replace(f"etl:{PASSWORD}@", "someone@")
    assert "names the state being copied" in one_line_error(
        cli("state", "migrate", "--to", other_spelling, state=pg_url), 2)


def test_privileges_a_user_lacks_are_one_line_exit_2(pg_server, pg_url: str, tmp_path: Path) -> None:
    import uuid

    import psycopg

    from etl.config import Settings
    from etl.errors import UsageError
    from etl.state import open_state

    db = pg_url.rsplit("/", 1)[1]
    writer, reader = f"w_{uuid.uuid4().hex[:8]}", f"r_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        for role in (writer, reader):
            admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            admin.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {role}')
            admin.execute(f'REVOKE CREATE ON DATABASE "{db}" FROM PUBLIC')
            admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    as_writer = pg_url.replace("postgresql://etl:", f"postgresql://{writer}:")
    as_reader = pg_url.replace("postgresql://etl:", f"postgresql://{reader}:")
    # before anyone created the schema, a user who may not create it is told what to grant
    laptop = old_db(tmp_path)
    assert "grant CREATE on the database" in one_line_error(
        cli("state", "migrate", "--to", as_writer, state=str(laptop)), 2)
    open_state(Settings.from_env({}, state=pg_url)).close()  # the owner's first run creates the schema
    with psycopg.connect(pg_url, autocommit=True) as admin:
        for role in (writer, reader):
            admin.execute(f"GRANT USAGE ON SCHEMA leadgenius_etl TO {role}")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA leadgenius_etl TO {writer}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA leadgenius_etl TO {reader}")
    # a user who may only read and write the tables runs, a read-only one may look but not write
    assert cli("state", "info", state=as_writer).returncode == 0
    assert cli("runs", state=as_reader).returncode == 0
    with open_state(Settings.from_env({}, state=as_reader)) as state, pytest.raises(UsageError) as refused:
        state.start_run(command="import", source="csv", target=None, client_id=None, mode="insert", dry_run=False)
    assert "refused a write" in str(refused.value) and "permission denied" in str(refused.value)
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize("command", [("state", "info"), ("runs",)])
def test_a_bad_sslmode_is_a_usage_error_named_before_connecting(command: tuple[str, ...]) -> None:
    # No server at port 1: the URL is judged before any connection (libpq would say "connection is bad", exit 3).
    url = f"postgresql://etl:{PASSWORD}@127.0.0.1:1/leads?sslmode=requir"
    line = one_line_error(cli(*command, state=url), 2)
    assert "sslmode='requir'" in line and "disable, allow, prefer, require, verify-ca, verify-full" in line
    assert "postgresql://etl:***@127.0.0.1:1/leads" in line
    # the same mistake made in libpq's environment variable, with a URL that leaves sslmode out
    env_line = one_line_error(cli(*command, state=url.split("?")[0], env={"PGSSLMODE": "on"}), 2)
    assert "PGSSLMODE" in env_line and "'on'" in env_line and "verify-full" in env_line
    # a misspelt parameter name too, and a percent-escape libpq cannot read in the password is not echoed
    assert 'invalid URI query parameter: "sslmdoe"' in one_line_error(
        cli(*command, state=url.replace("sslmode", "sslmdoe")), 2)
    broken = f"postgresql://etl:{PASSWORD}%zz@127.0.0.1:1/leads"
    assert "percent-encoded" in one_line_error(cli(*command, state=broken), 2)


READ_ONLY = [("state", "info"), ("runs",), ("runs", "--json"), ("undo", "--last", "--dry-run"),
             ("state", "migrate", "--to", "{elsewhere}")]


def user_objects(url: str) -> list[str]:
    """Every schema, table, sequence or view in the database outside PostgreSQL's own."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN"
            " ('information_schema', 'public') UNION ALL SELECT c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg\\_%'"
            " AND n.nspname <> 'information_schema'").fetchall()
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_say_there_is_no_state_and_create_none(state_db: str, tmp_path: Path,
                                                                  command: tuple[str, ...]) -> None:
    elsewhere = tmp_path / "copy" / "state.db"
    args = [a.format(elsewhere=elsewhere) for a in command]
    if state_db.startswith("postgresql://"):
        where, shown = state_db, state_db.replace(PASSWORD, "***")
    else:  # a typo'd directory: neither it nor the file may appear
        where = shown = str(tmp_path / "stat" / "state.db")
    before = sorted(tmp_path.rglob("*"))
    line = one_line_error(cli(*args, state=where, cwd=tmp_path), 2)
    assert f"no state at {shown}: " in line and "run an import or sync to create it" in line
    assert sorted(tmp_path.rglob("*")) == before  # no file, no directory (nor the migrate's destination)
    if state_db.startswith("postgresql://"):
        assert "has no schema leadgenius_etl" in line
        assert user_objects(state_db) == []
    else:
        assert "no such file" in line
    create_state(where)  # once a run has written, the same command reads it
    done = cli(*args, state=where, cwd=tmp_path)
    assert "no state" not in done.stderr and "Traceback" not in done.stderr
    assert done.returncode == (2 if command[0] == "undo" else 0), done.stderr  # undo: "no run to undo"


def test_a_file_that_is_not_a_state_is_left_as_it_is(tmp_path: Path) -> None:
    empty = tmp_path / "state.db"
    empty.touch()  # e.g. made by `touch`, or a SQLite file emptied by hand
    line = one_line_error(cli("state", "info", state=str(empty)), 2)
    assert f"no state at {empty}: the file holds no leadgenius-etl tables" in line
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]
    assert "it is a directory" in one_line_error(cli("runs", state=str(tmp_path)), 2)
