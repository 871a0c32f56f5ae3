"""`ls_sandbox`: the LeadScraper sandbox on a loopback port, reset before each test (over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from etl.sandbox.leadscraper.app import SANDBOX_KEY, create_app
from etl.sandbox.server import RunningServer
from tests.sandbox_admin import SandboxAdmin, reset_handle, serve


@dataclass
class LSSandbox(SandboxAdmin):
    """A running LeadScraper sandbox and its admin API."""

    key: str = SANDBOX_KEY

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def seed(self, n: int, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "seed", {"n": n, **kw})
        return result

    def add(self, *leads: dict[str, Any]) -> list[str]:
        ids: list[str] = self.admin("POST", "leads", {"leads": list(leads)})["added"]
        return ids

    def leads(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", "state")["leads"]
        return result

    def get(self, path: str, key: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return self._http.get(f"/v1{path}", params=params, headers=headers)


@pytest.fixture(scope="session")
def _ls_server() -> Iterator[RunningServer]:
    yield from serve(create_app())


@pytest.fixture
def ls_sandbox(_ls_server: RunningServer) -> Iterator[LSSandbox]:
    yield from reset_handle(lambda: LSSandbox(_ls_server.base_url))
