"""Creates the loader gave up on, unanswered, that land after all: adopted once, never left doubled.

A server that keeps working on a POST long after the client timed out: every attempt for a lead
(four rounds of POST, wait, look) goes unanswered, so the run reports the lead failed — and then
all four POSTs land. Before the fix the target kept four copies, and a rerun called it "unchanged"
and exited 0 with the doubles in place.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import cli_env
from tests.integration.helpers import email_counts, people, run_csv, settings_for, stored, write_csv

ROUNDS = 4  # MAX_IN_DOUBT_ROUNDS + 1 POSTs per lead


def _snap(*leads: dict[str, str]) -> Any:
    from etl.reconcile import TargetSnapshot

    snap = TargetSnapshot()
    snap.add(leads)
    return snap


def test_landed_late_adopts_the_first_copy_made_after_our_attempt() -> None:
    rows = {
        "a@x.com": {"status": "failed", "ours": 1, "intent_at": 1_700_000_000.0},
        "b@x.com": {"status": "failed", "ours": 0, "intent_at": 1_700_000_000.0},  # a refused create: not ours
        "c@x.com": {"status": "failed", "ours": 1, "intent_at": 1_700_000_000.0},  # only an older lead
        "d@x.com": {"status": "created", "ours": 1, "intent_at": 1_700_000_000.0},
    }
    snap = _snap(
        {"id": "a2", "email": "A@x.com", "createdAt": "2023-11-14T22:13:40Z"},
        {"id": "a1", "email": "a@x.com", "createdAt": "2023-11-14T22:13:30Z"},
        {"id": "b1", "email": "b@x.com", "createdAt": "2023-11-14T22:13:30Z"},
        {"id": "c1", "email": "c@x.com", "createdAt": "2023-01-01T00:00:00Z"},
        {"id": "d1", "email": "d@x.com", "createdAt": "2023-11-14T22:13:30Z"},
    )
    from etl.reconcile import landed_late

    adopted = landed_late(rows, snap)
    assert {k: v["id"] for k, v in adopted.items()} == {"a@x.com": "a1"}


@pytest.mark.slow
def test_unanswered_creates_that_land_later_are_adopted_once_and_their_doubles_removed(
    lg_sandbox, tmp_path: Path
) -> None:
    # Two leads, every POST of both answered only after 14 s; the client gives up on each after 1 s.
    lg_sandbox.fault("slow", next=2 * ROUNDS, route="POST /api/leads", slow_ms=14_000)
    settings = settings_for(lg_sandbox.base_url, tmp_path, timeout_s=1.0)
    two = people(2)
    first = run_csv(settings, write_csv(tmp_path / "both.csv", two), concurrency=2)
    assert (first.counts.created, first.counts.failed, first.exit_code) == (0, 2, 1), first.counts
    deadline = time.monotonic() + 40
    while sum(email_counts(stored(lg_sandbox, "acme-corp")).values()) < 2 * ROUNDS:
        assert time.monotonic() < deadline, email_counts(stored(lg_sandbox, "acme-corp"))
        time.sleep(0.5)
    a, b = (p["email"].strip().lower() for p in two)

    # A rerun with lead A: the target holds A four times. It keeps one and removes the other three.
    rerun = run_csv(settings, write_csv(tmp_path / "a.csv", two[:1]), concurrency=2)
    assert (rerun.exit_code, rerun.counts.created, rerun.reconcile["duplicates_removed"]) == (0, 0, ROUNDS - 1)
    assert email_counts(stored(lg_sandbox, "acme-corp")) == {a: 1, b: ROUNDS}

    # `reconcile --repair` over the whole client: B, reported failed, landed after all.
    proc = subprocess.run(
        [sys.executable, "-m", "etl", "reconcile", "--client", "Acme Corp", "--repair",
         "--report", str(tmp_path / "rec.json")],
        env=cli_env(lg_sandbox.base_url, tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert (rec["landed_late"], rec["duplicates_removed"], rec["confirmed"]) == (1, ROUNDS - 1, 2), rec
    assert "1 unanswered create(s) found landed" in proc.stdout
    assert email_counts(stored(lg_sandbox, "acme-corp")) == {a: 1, b: 1}

    # Nothing left to do: the same file again changes nothing.
    again = run_csv(settings, write_csv(tmp_path / "both2.csv", two), concurrency=2)
    assert (again.exit_code, again.counts.unchanged, again.reconcile["duplicates_removed"]) == (0, 2, 0)
