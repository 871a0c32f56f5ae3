"""`leadgenius-etl import leadgenius`: LeadGenius → LeadGenius (another client, tenant or deployment).

The source is read with the API-key bulk list; the target is written by the same pipeline as every
other import (transform, schemas, ledger-driven loader, reconciliation), so a rerun after a crash
creates nothing twice.

Credentials. Source: LEADGENIUS_API_KEY / LEADGENIUS_USER_ID (or `api_key` / `user_id` in the auth
file), plus the auth file's login when --company-id is omitted. Target: by default the same account
as the source (the Bearer login of the auth file / LEADGENIUS_EMAIL). Any target override
(--target-base-url, --target-auth-file, LEADGENIUS_TARGET_EMAIL) makes the target a separate account,
logged in with LEADGENIUS_TARGET_EMAIL / LEADGENIUS_TARGET_PASSWORD and kept in its own auth file, so
the source's auth file (and its API key) is never overwritten by the target's login.
"""

from __future__ import annotations

import os
from collections.abc import Mapping as AbcMapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.app import handle_errors
from etl.cli.common import ImportCommon, import_options
from etl.cli.import_cmd import import_app, run_source
from etl.config import Settings, check_url
from etl.errors import UsageError
from etl.log import register_secret
from etl.sources import SOURCES


def target_auth_path(source_auth: Path) -> Path:
    """`~/.leadgenius_auth.json` -> `~/.leadgenius_auth.target.json` (a separate account's tokens)."""
    name = source_auth.name
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return source_auth.with_name(f"{stem}.target.json")


def target_settings(
    source: Settings,
    *,
    base_url: str | None,
    auth_file: Path | None,
    env: AbcMapping[str, str] | None = None,
) -> Settings:
    """Pure: the target account's settings, derived from the source's and the target overrides."""
    env = os.environ if env is None else env
    email = env.get("LEADGENIUS_TARGET_EMAIL") or None
    password = env.get("LEADGENIUS_TARGET_PASSWORD") or None
    url = (base_url or source.base_url).rstrip("/")
    separate = url != source.base_url or auth_file is not None or email is not None
    if not separate:
        return source  # same account: its login writes, its API key reads the target fast
    url = check_url(url, allow_insecure_http=source.allow_insecure_http, what="--target-base-url")
    return replace(
        source,
        base_url=url,
        base_url_from_user=True,
        auth_file=auth_file or target_auth_path(source.auth_file),
        email=email,
        password=password,
        # Never the source's key: it belongs to another company (403 on the target's bulk list).
        api_key=env.get("LEADGENIUS_TARGET_API_KEY") or None,
        user_id=env.get("LEADGENIUS_TARGET_USER_ID") or None,
    )


@import_app.command("leadgenius")
@handle_errors
@import_options
def import_leadgenius(
    client: Annotated[str, typer.Option("--client", help="Target client name or slug (created if missing).")],
    company_id: Annotated[
        str | None,
        typer.Option("--company-id", help="Source company (default: the source login's, via GET /api/company)."),
    ] = None,
    source_client: Annotated[
        str | None, typer.Option("--source-client", help="Source client slug (default: every client).")
    ] = None,
    table: Annotated[str, typer.Option("--table", help="Source table: enrich (default) or source.")] = "enrich",
    target_base_url: Annotated[
        str | None,
        typer.Option(
            "--target-base-url", envvar="LEADGENIUS_TARGET_BASE_URL", help="Target API root (default: the source's)."
        ),
    ] = None,
    target_auth_file: Annotated[
        Path | None,
        typer.Option(
            "--target-auth-file",
            envvar="LEADGENIUS_TARGET_AUTH_FILE",
            help="Target account's auth file (default: the source's when the target is the same account).",
        ),
    ] = None,
    *,
    common: ImportCommon,
) -> None:
    """Copy leads from a LeadGenius company (or one client) into a client, once, without duplicates."""
    from etl.extract.leadgenius import LeadGeniusBulkSource

    if table not in ("enrich", "source"):
        raise UsageError(f"--table must be enrich or source, not {table!r}")
    source_settings = common.settings()
    target = target_settings(source_settings, base_url=target_base_url, auth_file=target_auth_file)
    for secret in (target.password, target.api_key):
        register_secret(secret)
    source = LeadGeniusBulkSource(source_settings, company_id=company_id, client_id=source_client, table=table)  # type: ignore[arg-type]
    mapping = common.load_mapping(SOURCES["leadgenius"].mapping)
    run_source(source, mapping, common.options(client), common, settings=target)
