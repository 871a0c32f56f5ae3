"""`leadgenius-etl sandbox`: prints the URL and demo credentials, serves, stops on SIGTERM; bad options exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from etl.sandbox.leadgenius.store import DEMO_TENANT
from etl.sandbox.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "etl", "sandbox", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=_env())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "abc"), "--port must be an integer"),
        (("--port", "70000"), "--port must be between"),
        (("--host", "0.0.0.0"), "not a loopback address"),
        (("--host", "10.1.2.3"), "not a loopback address"),
        (("--faults", "teapot:0.5"), "--faults"),
        (("--drop-probability", "1.5"), "--drop-probability"),
        (("--rate-limit", "-1"), "--rate-limit"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_the_faults_syntax() -> None:
    result = _run("--help")
    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    assert "next:N:KIND" in flat and "--allow-remote" in flat


def test_runs_in_the_foreground_until_sigterm(tmp_path: Path) -> None:
    # Every port chosen free: a sandbox the user runs meanwhile holds the defaults (8787-8789).
    port, hub_port, ls_port = free_port(), free_port(), free_port()
    db = tmp_path / "cli.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "sandbox", "--port", str(port), "--hubspot-port", str(hub_port),
         "--leadscraper-port", str(ls_port),
         "--rate-limit", "500", "--faults", "next:1:503@GET /api/company", "--db", str(db), "--token-ttl", "900"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(),
    )
    try:
        assert proc.stdout is not None
        out: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(out)
        base_url = f"http://127.0.0.1:{port}"
        for expected in (base_url, DEMO_TENANT.email, DEMO_TENANT.password, DEMO_TENANT.api_key,
                         DEMO_TENANT.user_id, DEMO_TENANT.company_id):
            assert expected in text, text or f"exit {proc.poll()}: {proc.stderr.read() if proc.poll() is not None else ''}"
        with httpx.Client(base_url=base_url, timeout=10) as client:
            deadline = time.monotonic() + 15
            while True:
                try:
                    r = client.post("/api/auth", json={"username": DEMO_TENANT.email,
                                                       "password": DEMO_TENANT.password})
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            assert r.json()["tokens"]["expiresIn"] == 900
            headers = {"Authorization": f"Bearer {r.json()['tokens']['accessToken']}"}
            first = client.get("/api/company", headers=headers)
            assert first.status_code == 503  # --faults
            second = client.get("/api/company", headers=headers)
            assert second.status_code == 200 and second.headers["X-RateLimit-Limit"] == "500"
            assert client.get("/__admin/config").json()["db_path"] == str(db)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert db.exists()
