"""Helpers for end-to-end runs against the sandbox (in-process pipeline, real HTTP)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from etl.config import Settings, state_location
from etl.extract.csv import CsvFileSource
from etl.mapping import Mapping
from etl.pipeline import ImportOptions, run_import
from etl.report import RunReport

HEADER = ["firstName", "lastName", "email", "companyName", "companyDomain", "title", "linkedinUrl", "phone", "notes"]


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def people(n: int, *, start: int = 0, title: str = "VP Sales") -> list[dict[str, str]]:
    return [
        {
            "firstName": f"First{i}",
            "lastName": "." if i % 7 == 0 else f"Last{i}",  # quirk 4 bait
            "email": f"Person{i}@Example.com " if i % 5 == 0 else f"person{i}@example.com",
            "companyName": f"Company {i % 13}",
            "companyDomain": f"company{i % 13}.com",
            "title": title if i % 3 else "",  # quirk 3 bait: empty string
            "linkedinUrl": f"https://linkedin.com/in/person{i}",
            "phone": f"+1 555 {i:04d}" if i % 2 else "",  # quirk 2 bait: `phone`
            "notes": "",
        }
        for i in range(start, start + n)
    ]


def settings_for(base_url: str, tmp_path: Path, *, state: str | None = None, **kw: Any) -> Settings:
    """`state`: LEADGENIUS_ETL_STATE (a SQLite path or a postgresql:// URL); default tmp_path/state.db."""
    return Settings(
        base_url=base_url,
        auth_file=tmp_path / "auth.json",
        email="demo@leadgenius.local",
        password="demo-password",
        timeout_s=kw.pop("timeout_s", 10.0),
        **state_location(state or str(tmp_path / "state.db")),
        **kw,
    )


def run_csv(settings: Settings, path: Path, client: str = "Acme Corp", **opts: Any) -> RunReport:
    options = ImportOptions(client=client, **opts)
    return anyio.run(lambda: run_import(settings, CsvFileSource(path), Mapping.builtin("csv"), options))


def stored(sandbox: Any, client_id: str, company_id: str = "company-demo") -> list[dict[str, Any]]:
    leads = sandbox.state()["leads"]
    return [lead for lead in leads if lead["client_id"] == client_id and lead["company_id"] == company_id]


def email_counts(leads: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(lead["email"]).lower() for lead in leads)


def assert_no_quirk_500(sandbox: Any) -> None:
    stats = sandbox.stats()
    assert not any(stats["quirk_500"].values()), stats["quirk_500"]
