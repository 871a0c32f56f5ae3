"""Running the real CLI in a subprocess, and checking that no secret leaks from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT, Tenant


def cli_env(base_url: str, tmp_path: Path, tenant: Tenant = DEMO_TENANT, *, api_key: bool = True,
            **extra: str) -> dict[str, str]:
    """A clean environment for the CLI: no inherited LEADGENIUS_*/HUBSPOT_* variables, state in tmp_path.

    api_key=False leaves out the bulk credentials, so reads go through /api/leads with the Bearer token.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADGENIUS", "HUBSPOT"))}
    env.update(
        LEADGENIUS_BASE_URL=base_url,
        LEADGENIUS_AUTH_FILE=str(tmp_path / "auth.json"),
        LEADGENIUS_EMAIL=tenant.email,
        LEADGENIUS_PASSWORD=tenant.password,
        LEADGENIUS_ETL_STATE=str(tmp_path / "state.db"),
        LEADGENIUS_TIMEOUT_S="10",
    )
    if api_key:
        env.update(LEADGENIUS_API_KEY=tenant.api_key, LEADGENIUS_USER_ID=tenant.user_id)
    env.update(extra)
    return env


def secrets_of(tmp_path: Path) -> list[str]:
    """Every secret a run in tmp_path could leak: the tenants' passwords and keys, and its tokens."""
    found = [DEMO_TENANT.api_key, DEMO_TENANT.password, OTHER_TENANT.api_key, OTHER_TENANT.password]
    for auth in tmp_path.glob("auth*.json"):
        data = json.loads(auth.read_text())
        found += [str(data[k]) for k in ("token", "id_token", "refresh_token") if data.get(k)]
    return found


def assert_no_secret(tmp_path: Path, **texts: str) -> None:
    secrets = secrets_of(tmp_path)
    assert len(secrets) > 4, "expected tokens in the auth file"
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {name}"
