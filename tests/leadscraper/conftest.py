"""`ls_sandbox`: the LeadScraper sandbox on a loopback port, reset before each test (over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from etl.sandbox.leadscraper.app import SANDBOX_KEY, create_app
from etl.sandbox.server import RunningServer, start_in_thread


@dataclass
class LSSandbox:
    """A running LeadScraper sandbox and its admin API."""

    root: str
    key: str = SANDBOX_KEY
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.root, timeout=60)

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._http.request(method, f"/__admin/{path}", json=body)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self.admin("POST", "reset")

    def seed(self, n: int, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "seed", {"n": n, **kw})
        return result

    def add(self, *leads: dict[str, Any]) -> list[str]:
        ids: list[str] = self.admin("POST", "leads", {"leads": list(leads)})["added"]
        return ids

    def config(self, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("PUT", "config", kw)
        return result

    def fault(self, kind: str, **kw: Any) -> None:
        self.admin("POST", "faults", {"kind": kind, **kw})

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def leads(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", "state")["leads"]
        return result

    def get(self, path: str, key: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return self._http.get(f"/v1{path}", params=params, headers=headers)


@pytest.fixture(scope="session")
def _ls_server() -> Iterator[RunningServer]:
    server = start_in_thread(create_app())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ls_sandbox(_ls_server: RunningServer) -> Iterator[LSSandbox]:
    handle = LSSandbox(_ls_server.base_url)
    handle.reset()
    try:
        yield handle
    finally:
        handle._http.close()
