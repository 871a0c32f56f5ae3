"""What the three sandboxes' test handles share: an HTTP client on the sandbox's root, its
`/__admin/*` API (reset, config, faults, stats), and one server per pytest session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from etl.sandbox.server import RunningServer, start_in_thread


@dataclass
class SandboxAdmin:
    """A running sandbox's admin API, over HTTP."""

    root: str
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.root, timeout=60)

    @property
    def base_url(self) -> str:
        """The API root a client is pointed at."""
        return self.root

    def admin(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """Call /__admin/<path> (path with or without the /__admin prefix) and return its JSON."""
        path = path if path.startswith("/__admin") else "/__admin/" + path.lstrip("/")
        response = self._http.request(method, path, json=json, params=params or None)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.admin("POST", "reset")

    def config(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("PUT", "config", changes)
        return result

    def fault(self, kind: str, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "faults", {"kind": kind, **kw})
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def close(self) -> None:
        self._http.close()


def serve(app: Any) -> Iterator[RunningServer]:
    """Body of a session fixture: the app on a free loopback port until the session ends."""
    server = start_in_thread(app)
    try:
        yield server
    finally:
        server.stop()


def reset_handle(make: Callable[[], SandboxAdmin]) -> Iterator[Any]:
    """Body of a per-test fixture: a handle on a freshly reset sandbox, closed afterwards."""
    handle = make()
    handle.reset()
    try:
        yield handle
    finally:
        handle.close()
