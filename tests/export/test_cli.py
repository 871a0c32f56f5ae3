"""The export and `import leadgenius` commands as users run them: subprocess, exit codes, no secrets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from etl.sandbox.leadgenius.store import OTHER_TENANT
from tests.cli_helpers import assert_no_secret, cli_env
from tests.export.conftest import CLI, read_any


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_export_cli_success_report_and_no_secret(lg_sandbox, tmp_path: Path) -> None:
    lg_sandbox.seed("Acme Corp", n=1234)
    env = cli_env(lg_sandbox.base_url, tmp_path)
    done = run(["export", "--client", "acme-corp", "--out", "a.parquet", "--report", "r.json"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exported 1,234 lead(s)" in done.stdout and "a.parquet" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["rows"], report["company_id"], report["client_id"]) == (1234, "company-demo", "acme-corp")
    assert read_any(tmp_path / "a.parquet").height == 1234
    assert_no_secret(tmp_path, stdout=done.stdout, stderr=done.stderr, report=(tmp_path / "r.json").read_text())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--company-id", "company-demo", "--out", "x.xlsx"], ".xlsx"),
        (["--company-id", "company-demo", "--out", "x.csv", "--fields", "email,phone"], "phone"),
        (["--company-id", "company-demo", "--out", "x.csv", "--table", "contacts"], "--table"),
    ],
)
def test_export_usage_errors_exit_2(lg_sandbox, tmp_path: Path, args: list[str], needle: str) -> None:
    done = run(["export", *args], cli_env(lg_sandbox.base_url, tmp_path), tmp_path)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x.*"))


def test_missing_company_id_with_no_login_exits_2(lg_sandbox, tmp_path: Path) -> None:
    env = cli_env(lg_sandbox.base_url, tmp_path)
    del env["LEADGENIUS_EMAIL"], env["LEADGENIUS_PASSWORD"]
    done = run(["export", "--out", "x.csv"], env, tmp_path)
    assert done.returncode == 2 and "--company-id" in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_bad_api_key_exits_3_without_echoing_it(lg_sandbox, tmp_path: Path) -> None:
    env = cli_env(lg_sandbox.base_url, tmp_path, LEADGENIUS_API_KEY="lgk_wrong_secret_123456")
    done = run(["export", "--company-id", "company-demo", "--out", "x.csv"], env, tmp_path)
    assert done.returncode == 3, done.stderr
    assert "lgk_wrong_secret_123456" not in done.stdout + done.stderr
    assert not (tmp_path / "x.csv").exists()
    migrate = run(["import", "leadgenius", "--company-id", "company-demo", "--client", "X"], env, tmp_path)
    assert migrate.returncode == 3 and "lgk_wrong_secret_123456" not in migrate.stdout + migrate.stderr


def test_import_leadgenius_cli_to_another_tenant(lg_sandbox, tmp_path: Path) -> None:
    lg_sandbox.seed("Acme Corp", n=700)
    env = cli_env(
        lg_sandbox.base_url,
        tmp_path,
        LEADGENIUS_TARGET_EMAIL=OTHER_TENANT.email,
        LEADGENIUS_TARGET_PASSWORD=OTHER_TENANT.password,
    )
    args = [
        "import",
        "leadgenius",
        "--company-id",
        "company-demo",
        "--source-client",
        "acme-corp",
        "--client",
        "From Demo",
        "--report",
        "m.json",
    ]
    done = run(args, env, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    assert (report["counts"]["created"], report["counts"]["confirmed"]) == (700, 700)
    assert report["client_id"] == "from-demo"
    other = lg_sandbox.state(company_id="company-other", client_id="from-demo")["leads"]
    assert len(other) == 700
    # the target login went to its own auth file; the source's is not overwritten by it
    assert json.loads((tmp_path / "auth.target.json").read_text())["email"] == OTHER_TENANT.email
    assert_no_secret(tmp_path, stdout=done.stdout, stderr=done.stderr, report=(tmp_path / "m.json").read_text())
    again = run(args, env, tmp_path)
    assert again.returncode == 0 and json.loads((tmp_path / "m.json").read_text())["counts"]["created"] == 0
