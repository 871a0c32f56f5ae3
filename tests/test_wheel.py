"""The package as a user installs it: sdist -> wheel -> a fresh venv outside the repository.

Issue 10, item 6: a non-editable `pip install .` found no mappings (they were looked up next to the source tree),
and the suite, run from an editable install, could not see it. This test builds the release artefacts, installs
the wheel with its declared dependencies (held to the lock's versions, which uv's cache already has after
`make install`) into a venv in a temporary directory, and runs the console script from there, against a sandbox
the installed package itself serves.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from etl.sandbox.leadgenius.store import DEMO_TENANT
from etl.sandbox.server import free_port

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = sorted(p.stem for p in (ROOT / "etl" / "mappings").glob("*.toml"))


def _uv() -> str:
    """The pinned uv that `make install` puts in .tools/ (or one on PATH)."""
    pinned = ROOT / ".tools" / "bin" / "uv"
    found = str(pinned) if pinned.is_file() else shutil.which("uv")
    if found is None:
        pytest.fail("uv not found: run `make install` (it installs the pinned uv into .tools/)")
    return found


def _clean_env(**extra: str) -> dict[str, str]:
    """No trace of the checkout or of the dev venv: what a user's shell has."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "LEADGENIUS", "HUBSPOT", "PYTEST", "COV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env or _clean_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv outside the repository with the built wheel (and only it) as leadgenius-etl. Yields its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    uv = _uv()
    # sdist first, then the wheel from the sdist: a file missing from either is missing here too.
    _run([uv, "build", "-q", "--out-dir", str(dist), str(ROOT)], cwd=work)
    (wheel,) = dist.glob("leadgenius_etl-*.whl")
    (sdist,) = dist.glob("leadgenius_etl-*.tar.gz")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    with tarfile.open(sdist) as tf:
        sdist_names = tf.getnames()
    assert MAPPINGS, "no mappings in the checkout"
    for name in MAPPINGS:
        assert f"etl/mappings/{name}.toml" in names, f"{name} is not in the wheel"
    assert "etl/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE is not in the wheel"
    assert any(n.endswith("/LICENSE") for n in sdist_names), "LICENSE is not in the sdist"
    assert not any(n.startswith(("tests/", "bench/")) for n in names), "tests or bench leaked into the wheel"

    # Held to the lock's versions, the wheel's own dependency metadata decides what gets installed.
    constraints = work / "constraints.txt"
    exported = _run([uv, "export", "-q", "--frozen", "--no-hashes", "--no-emit-project", "--no-header",
                     "--format", "requirements.txt"], cwd=ROOT)
    constraints.write_text(exported.stdout)
    venv = work / "venv"
    _run([uv, "venv", "-q", "--python", sys.executable, str(venv)], cwd=work)
    _run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-c", str(constraints),
          str(wheel)], cwd=work)
    yield venv / "bin"


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed / "python"), "-c", "import etl, etl.mapping as m; print(etl.__file__); "
                "print(','.join(m.builtin_names()))"], cwd=tmp_path).stdout.splitlines()
    module = Path(out[0]).resolve()
    assert module.is_relative_to(installed.parent.resolve()), module
    assert not module.is_relative_to(ROOT / "etl"), module  # (pytest's --basetemp may sit inside ROOT)
    assert out[1].split(",") == MAPPINGS


def test_sandbox_help_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    result = _run([str(installed / "leadgenius-etl"), "sandbox", "--help"], cwd=tmp_path)
    assert "--faults" in result.stdout and "--port" in result.stdout


def test_a_dry_run_from_the_wheel_against_its_own_sandbox(installed: Path, tmp_path: Path) -> None:
    """`import csv sample_data/leads.csv --client X --dry-run`, from a directory that is not the checkout."""
    (tmp_path / "sample_data").mkdir()
    shutil.copy(ROOT / "sample_data" / "leads.csv", tmp_path / "sample_data" / "leads.csv")
    # Every port chosen free: a sandbox the user runs meanwhile holds the defaults (8787-8789).
    port, hub_port, ls_port = free_port(), free_port(), free_port()
    sandbox = subprocess.Popen(
        [str(installed / "leadgenius-etl"), "sandbox", "--port", str(port), "--hubspot-port", str(hub_port),
         "--leadscraper-port", str(ls_port)],
        cwd=tmp_path, env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base_url}/__admin/config", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert sandbox.poll() is None, f"the sandbox exited {sandbox.returncode}: {sandbox.stderr.read()}"
                assert time.monotonic() < deadline, "the sandbox did not come up in 60 s"
                time.sleep(0.1)
        env = _clean_env(
            LEADGENIUS_BASE_URL=base_url,
            LEADGENIUS_AUTH_FILE=str(tmp_path / "auth.json"),
            LEADGENIUS_EMAIL=DEMO_TENANT.email,
            LEADGENIUS_PASSWORD=DEMO_TENANT.password,
            LEADGENIUS_ETL_STATE=str(tmp_path / "state.db"),
        )
        result = subprocess.run(
            [str(installed / "leadgenius-etl"), "import", "csv", "sample_data/leads.csv", "--client", "X",
             "--dry-run", "--report", "dry.json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        report = json.loads((tmp_path / "dry.json").read_text())
        with (tmp_path / "sample_data" / "leads.csv").open(newline="", encoding="utf-8") as f:
            records = sum(1 for _ in csv.DictReader(f))
        counts = report["counts"]
        assert report["dry_run"] is True and report["client_id"] == "x"
        assert counts["extracted"] == records > 0
        assert counts["valid"] > 0
        assert counts["valid"] + counts["rejected"] == records
        assert counts["created"] == counts["valid"] - counts["duplicates"]  # would create: the client is empty
        with httpx.Client(base_url=base_url, timeout=10) as client:
            stats = client.get("/__admin/stats").json()
            state = client.get("/__admin/state").json()
        assert stats["total"] > 0, "the dry run never reached the sandbox"
        assert state["leads"] == [], "a dry run wrote leads"
        assert (tmp_path / "state.db").exists()
    finally:
        sandbox.send_signal(signal.SIGTERM)
        try:
            sandbox.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            sandbox.wait()
