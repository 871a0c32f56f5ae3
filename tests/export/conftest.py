"""Helpers for the export and migration tests: settings and CLI environments per sandbox tenant."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import polars as pl

from etl.config import Settings
from etl.export import run_export
from etl.sandbox.leadgenius.store import DEMO_TENANT, Tenant
from tests.cli_helpers import cli_env  # noqa: F401 - re-exported for the tests here

REPO = Path(__file__).resolve().parents[2]
CLI = [str(REPO / ".venv" / "bin" / "leadgenius-etl")]
if not Path(CLI[0]).exists():  # e.g. a CI venv elsewhere
    CLI = [sys.executable, "-m", "etl"]


def tenant_settings(base_url: str, tmp_path: Path, tenant: Tenant = DEMO_TENANT, **kw: Any) -> Settings:
    """Settings of one sandbox tenant: its login for the Bearer calls and its API key for the bulk list."""
    return Settings(
        base_url=base_url,
        auth_file=tmp_path / f"auth-{tenant.company_id}.json",
        email=tenant.email,
        password=tenant.password,
        api_key=tenant.api_key,
        user_id=tenant.user_id,
        state_path=kw.pop("state_path", tmp_path / "state.db"),
        timeout_s=kw.pop("timeout_s", 10.0),
        **kw,
    )


def export(settings: Settings, out: Path, **kw: Any) -> dict[str, Any]:
    """run_export in-process (real HTTP to the sandbox)."""
    args: dict[str, Any] = {"company_id": None, "client_id": None, "table": "enrich", "fields": None} | kw
    return anyio.run(lambda: run_export(settings, out=out, **args))


def read_any(path: Path) -> pl.DataFrame:
    """Read an export back: CSV and JSONL as strings, Parquet with its own types."""
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if path.suffix == ".jsonl":
        with path.open() as fh:
            first = fh.readline()
        if not first:
            return pl.DataFrame()
        order = list(json.loads(first))  # the file's own key order (polars may sort keys)
        return pl.read_ndjson(path, schema={c: pl.String for c in order})
    return pl.read_parquet(path)

