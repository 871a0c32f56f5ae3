"""`hs_sandbox`: the HubSpot CRM sandbox on a loopback port, reset before each test.

One server per session (per xdist worker); every test starts from POST /__admin/reset: no data,
no faults, zeroed stats, default config (100 requests / 10 s, 5 searches / s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from hubspot import HubSpot

from etl.extract.hubspot import FRAME_COLUMNS, FRAME_SCHEMA, HubSpotExtractor
from etl.sandbox.hubspot.app import SANDBOX_TOKEN, create_app
from etl.sandbox.server import RunningServer
from tests.sandbox_admin import SandboxAdmin, serve


@dataclass
class HSSandbox(SandboxAdmin):
    """A running HubSpot sandbox and its admin API, over HTTP."""

    token: str = SANDBOX_TOKEN

    def seed(self, contacts: int, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "seed", {"contacts": contacts, **kw})
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "state")
        return result

    def touch(self, **kw: Any) -> list[str]:
        ids: list[str] = self.admin("POST", "touch", kw)["ids"]
        return ids

    def unlimited(self) -> None:
        """No rate limits: for tests about volume, not about limits."""
        self.config(rate_limit_per_10s=0, search_per_s=0)

    def client(self, token: str | None = None) -> HubSpot:
        """The REAL official client, strict about the models it parses."""
        return HubSpot(access_token=token or self.token, host=self.base_url, client_side_validation=True)

    def extractor(self, **kw: Any) -> HubSpotExtractor:
        kw.setdefault("backoff_factor", 0.01)
        kw.setdefault("search_per_second", 0)
        return HubSpotExtractor(kw.pop("token", self.token), host=self.base_url, **kw)


@pytest.fixture(scope="session")
def _hs_server() -> Iterator[RunningServer]:
    yield from serve(create_app(seed=7))


@pytest.fixture
def hs_sandbox(_hs_server: RunningServer) -> Iterator[HSSandbox]:
    sandbox = HSSandbox(_hs_server.base_url)
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def expected_frame(state: dict[str, Any], ids: set[str] | None = None) -> pl.DataFrame:
    """What the extractor must produce, derived from the sandbox's truth: active contacts (in id order,
    or only `ids`), company fields from the PRIMARY company, deleted primary -> status "deleted"."""
    companies = {c["id"]: c for c in state["companies"]}
    rows: dict[str, list[Any]] = {c: [] for c in FRAME_COLUMNS}
    for contact in state["contacts"]:
        if contact["archived"] or (ids is not None and contact["id"] not in ids):
            continue
        props = contact["properties"]
        for name in FRAME_COLUMNS[:11]:
            rows[name].append(props.get(name))
        primary = contact["primary"]
        if primary is None:
            values = [None, None, None, "none"]
        elif companies[primary]["deleted"]:
            values = [None, None, primary, "deleted"]
        else:
            p = companies[primary]["properties"]
            values = [p.get("name"), p.get("domain"), primary, "ok"]
        for name, value in zip(FRAME_COLUMNS[11:], values, strict=True):
            rows[name].append(value)
    return pl.DataFrame(rows, schema={c: FRAME_SCHEMA[c] for c in FRAME_COLUMNS})


def company_floor(state: dict[str, Any], ids: set[str] | None = None) -> int:
    """ceil(distinct primary companies / 100): the fewest company batch reads that can do the job."""
    distinct = {
        c["primary"]
        for c in state["contacts"]
        if c["primary"] and not c["archived"] and (ids is None or c["id"] in ids)
    }
    return math.ceil(len(distinct) / 100)
