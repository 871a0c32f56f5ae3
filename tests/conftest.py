"""Shared fixtures. `lg_sandbox`: a LeadGenius API sandbox on a free loopback port, reset per test.

The server is started once per session (per xdist worker) and reset through POST /__admin/reset
before each test, so every test sees: the started config, no faults, zeroed stats, no clients or
leads, and the two tenants (DEMO_TENANT, OTHER_TENANT).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from etl.sandbox.leadgenius.app import create_app
from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT, Tenant
from etl.sandbox.server import RunningServer
from tests.sandbox_admin import SandboxAdmin, reset_handle, serve

# CI shares 2 cores with the sandboxes: time limits on examples would be noise, not findings.
# Under CI the examples are derandomised, so a red build is reproducible, not a coin toss.
settings.register_profile(
    "leadgenius", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=bool(os.environ.get("CI"))
)
settings.load_profile("leadgenius")


@dataclass
class LGSandbox(SandboxAdmin):
    """Handle on a running LeadGenius sandbox: base URL, tenants and admin helpers (all over HTTP)."""

    tenant: Tenant = DEMO_TENANT
    other_tenant: Tenant = OTHER_TENANT

    def seed(self, client: str = "Acme Corp", n: int = 100, **kw: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "seed", {"client": client, "n": n, **kw})
        return result

    def state(self, **filters: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "state", **filters)
        return result

    def login(self, tenant: Tenant | None = None) -> dict[str, Any]:
        """POST /api/auth; returns the `tokens` object."""
        tenant = tenant or self.tenant
        r = self._http.post("/api/auth", json={"username": tenant.email, "password": tenant.password})
        r.raise_for_status()
        tokens: dict[str, Any] = r.json()["tokens"]
        return tokens

    def bearer(self, tenant: Tenant | None = None) -> dict[str, str]:
        """Authorization headers with a fresh access token."""
        return {"Authorization": f"Bearer {self.login(tenant)['accessToken']}"}

    def api_key_headers(self, tenant: Tenant | None = None) -> dict[str, str]:
        tenant = tenant or self.tenant
        return {"x-api-key": tenant.api_key, "x-user-id": tenant.user_id}



@pytest.fixture(scope="session")
def _lg_sandbox_server() -> Iterator[RunningServer]:
    yield from serve(create_app())


@pytest.fixture
def lg_sandbox(_lg_sandbox_server: RunningServer) -> Iterator[LGSandbox]:
    """A reset LeadGenius sandbox: `.base_url`, `.tenant`, `.other_tenant`, `.admin(method, path, json)`."""
    yield from reset_handle(lambda: LGSandbox(_lg_sandbox_server.base_url))


# --- a real PostgreSQL server (state backend tests) ------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One PostgreSQL server per session (per xdist worker); each test takes a fresh database."""
    from tests.pg_server import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):  # CI must not quietly skip the shared-state tests
            pytest.fail(f"CI cannot start PostgreSQL: {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL (password included) of a fresh, empty database on the session's server."""
    url: str = pg_server.create_database()
    return url


def state_for(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """LEADGENIUS_ETL_STATE for `request.param`: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def state_db(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """LEADGENIUS_ETL_STATE for each backend."""
    return state_for(request, tmp_path)


# --- shared/ beside the repository ----------------------------------------------------------


SHARED = Path(__file__).resolve().parents[1].parent / "shared"
"""shared/ beside the repository: /work/shared through the worktrees' ../shared, and a copy beside the clone in CI."""


@pytest.fixture(scope="session")
def shared_seeds() -> Path:
    """shared/seeds. Missing under CI (which lays shared/ beside the clone) is a failure; elsewhere a visible skip."""
    seeds = SHARED / "seeds"
    if not seeds.is_dir():
        message = f"{seeds} not found: the seeds live in shared/ beside the repository"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return seeds
