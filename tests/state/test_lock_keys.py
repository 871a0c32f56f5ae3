"""Job locks in PostgreSQL take a 64-bit key per job name: two job names whose 32-bit hashtext() collides
no longer block each other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.state.postgres import MIGRATION_LOCK, lock_ids, lock_key
from tests.integration.helpers import people, write_csv
from tests.integration.test_cli import cli, env_for

# Found with `SELECT hashtext('nightly-' || i) ... GROUP BY 1 HAVING count(*) > 1` over 300 000 names:
# under the old key (hashtext, 32 bits) these two jobs shared one lock.
COLLIDING = ("nightly-70917", "nightly-176557")


def test_lock_keys_are_signed_64_bit_and_the_same_in_every_process() -> None:
    names = ["nightly", "acme-nightly", "undo:20261201T000000Z-abc", MIGRATION_LOCK, "ünïcode job", *COLLIDING]
    here = [lock_key(name) for name in names]
    assert all(-(2**63) <= key < 2**63 for key in here)
    assert len(set(here)) == len(names)
    # another interpreter with another hash seed (Python's hash() of a str differs per process)
    code = "import sys, json; from etl.state.postgres import lock_key; print(json.dumps([lock_key(n) for n in json.loads(sys.argv[1])]))"
    import json

    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True, timeout=60).stdout
        assert json.loads(out) == here
    # pinned: a change of the key is a change of the lock protocol (workers of two versions would not exclude
    # each other), so it must be deliberate
    assert lock_key("nightly") == 6485032466408543646


@pytest.mark.parametrize("key", [0, 1, -1, 2**63 - 1, -(2**63), 0x1234_5678_9ABC_DEF0])
def test_lock_ids_split_a_key_as_pg_locks_shows_it(key: int) -> None:
    classid, objid = lock_ids(key)
    assert 0 <= classid < 2**32 and 0 <= objid < 2**32
    assert ((classid << 32) | objid) == key & (2**64 - 1)


def test_jobs_whose_names_collide_under_hashtext_run_side_by_side(lg_sandbox, pg_url: str, tmp_path: Path) -> None:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT hashtext(%s) = hashtext(%s)", COLLIDING).fetchone()
    assert row and row[0], "the two names must collide under the old 32-bit key for this test to mean anything"
    held, other = COLLIDING
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from etl.config import Settings; from etl.state import open_state\n"
         "s = open_state(Settings.from_env({}, state=sys.argv[1]))\n"
         "with s.job_lock(sys.argv[2]):\n    print('locked', flush=True); time.sleep(120)\n",
         pg_url, held],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        write_csv(tmp_path / "leads.csv", people(5))
        job = tmp_path / "job.toml"
        job.write_text(f'[job]\nname = "{other}"\nsource = "csv"\npath = "leads.csv"\nclient = "Acme Corp"\n')
        env = env_for(lg_sandbox.base_url, tmp_path, LEADGENIUS_ETL_STATE=pg_url)
        ran = cli("sync", str(job), "-q", env=env)
        assert ran.returncode == 0, (ran.returncode, ran.stderr)
        # the same job as the holder's is still refused, naming the holder
        job.write_text(job.read_text().replace(other, held))
        refused = cli("sync", str(job), "-q", env=env)
        assert refused.returncode == 4 and f"pid {holder.pid}" in refused.stderr, refused.stderr
    finally:
        holder.kill()
        holder.wait(10)
