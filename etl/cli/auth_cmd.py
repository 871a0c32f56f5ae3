"""`leadgenius-etl auth login|refresh|status`."""

from __future__ import annotations

import getpass
import os
import sys
import time
from typing import Annotated

import typer

from etl.cli.app import app, handle_errors
from etl.cli.common import AuthFileOpt, BaseUrlOpt, InsecureOpt, run_async, settings_from, setup_logging
from etl.config import Settings
from etl.errors import CredentialsRejected, UsageError
from etl.load.api import LeadGeniusApi
from etl.load.auth import jwt_claims, read_auth_file, write_auth_file

auth_app = typer.Typer(help="Log in to LeadGenius and manage the auth file.", no_args_is_help=True)
app.add_typer(auth_app, name="auth")

EmailOpt = Annotated[str | None, typer.Option("--email", envvar="LEADGENIUS_EMAIL", help="Login e-mail.")]


@auth_app.command("login")
@handle_errors
def login(
    email: EmailOpt = None,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="Also store an API key read from standard input.")
    ] = False,
    base_url: BaseUrlOpt = None,
    auth_file: AuthFileOpt = None,
    allow_insecure_http: InsecureOpt = False,
) -> None:
    """Log in with e-mail and password (LEADGENIUS_PASSWORD or a prompt; never a flag)."""
    setup_logging(quiet=True)
    password = os.environ.get("LEADGENIUS_PASSWORD")
    if not email:
        if not sys.stdin.isatty():
            raise UsageError("no e-mail: pass --email or set LEADGENIUS_EMAIL")
        email = typer.prompt("E-mail")
    if not password:
        if not sys.stdin.isatty():
            raise UsageError("no password: set LEADGENIUS_PASSWORD (passwords are never command-line arguments)")
        password = getpass.getpass("Password: ")
    api_key = sys.stdin.readline().strip() if api_key_stdin else None
    settings = settings_from(base_url=base_url, auth_file=auth_file, allow_insecure_http=allow_insecure_http,
                             email=email, password=password)

    async def go() -> str | None:
        async with LeadGeniusApi(settings) as api:
            await api.login()
            return api.keeper.user_id

    user_id = run_async(go)
    if api_key:
        data = read_auth_file(settings.auth_file)
        data["api_key"] = api_key
        write_auth_file(settings.auth_file, data)
    print(f"logged in as {email} (user {user_id}) at {settings.base_url}; tokens saved to {settings.auth_file}")


@auth_app.command("refresh")
@handle_errors
def refresh(base_url: BaseUrlOpt = None, auth_file: AuthFileOpt = None, allow_insecure_http: InsecureOpt = False) -> None:
    """Exchange the stored refresh token for a new access token."""
    setup_logging(quiet=True)
    settings = _stored_settings(base_url, auth_file, allow_insecure_http)

    async def go() -> None:
        async with LeadGeniusApi(settings) as api:
            if api.keeper.tokens is None:
                raise CredentialsRejected("no stored token to refresh: run `leadgenius-etl auth login`")
            await api.keeper.renew(api._post_raw, stale=api.keeper.tokens.access)

    run_async(go)
    print(f"token refreshed; saved to {settings.auth_file}")


@auth_app.command("status")
@handle_errors
def status(base_url: BaseUrlOpt = None, auth_file: AuthFileOpt = None, allow_insecure_http: InsecureOpt = False) -> None:
    """Show who is logged in and until when; checks the token against the API."""
    setup_logging(quiet=True)
    settings = _stored_settings(base_url, auth_file, allow_insecure_http)
    data = read_auth_file(settings.auth_file)
    if not data.get("token"):
        raise CredentialsRejected(f"not logged in (no token in {settings.auth_file})")
    claims = jwt_claims(data["token"])
    exp = claims.get("exp")
    left = f"{int(exp - time.time())} s" if isinstance(exp, int | float) else "unknown"

    async def go() -> int:
        async with LeadGeniusApi(settings) as api:
            return len(await api.list_clients())

    n_clients = run_async(go)
    mode = oct(settings.auth_file.stat().st_mode & 0o777)
    print(f"email:     {data.get('email')}\nuser_id:   {data.get('user_id') or claims.get('sub')}\n"
          f"base_url:  {settings.base_url}\ntoken:     valid (expires in {left})\n"
          f"api_key:   {'stored' if data.get('api_key') else 'none'}\nclients:   {n_clients}\n"
          f"auth file: {settings.auth_file} ({mode})")


def _stored_settings(base_url: str | None, auth_file: object, insecure: bool) -> Settings:
    settings = settings_from(base_url=base_url, auth_file=auth_file, allow_insecure_http=insecure)  # type: ignore[arg-type]
    stored = read_auth_file(settings.auth_file)
    if not settings.base_url_from_user and stored.get("base_url"):
        settings = settings_from(base_url=stored["base_url"], auth_file=auth_file, allow_insecure_http=insecure)  # type: ignore[arg-type]
    return settings
