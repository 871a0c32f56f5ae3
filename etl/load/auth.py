"""The auth file (seeds' format, mode 0600), JWT expiry, and a token keeper that refreshes in time."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from etl.config import Settings
from etl.errors import CredentialsRejected, UsageError
from etl.log import get_logger, register_secret

AUTH_KEYS = ("token", "id_token", "refresh_token", "email", "user_id", "base_url", "api_key")


def jwt_claims(token: str) -> dict[str, Any]:
    """Decode a JWT payload without checking the signature (we only read `exp` and `sub`)."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError):
        return {}


def refresh_margin_s(claims: dict[str, Any]) -> float:
    """Refresh this long before `exp`: a minute, or a quarter of a short token's lifetime."""
    try:
        lifetime = float(claims["exp"]) - float(claims["iat"])
    except (KeyError, TypeError, ValueError):
        return 60.0
    return max(0.5, min(60.0, lifetime * 0.25))


def read_auth_file(path: Path) -> dict[str, Any]:
    """Read an auth file written by us or by the seeds' own scripts. Missing file: {}."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"auth file {path} is unreadable ({type(exc).__name__}); delete it and log in again") from None
    if not isinstance(data, dict):
        raise UsageError(f"auth file {path} is not a JSON object; delete it and log in again")
    for key in ("token", "id_token", "refresh_token", "api_key"):
        register_secret(data.get(key))
    return data


def write_auth_file(path: Path, data: dict[str, Any]) -> None:
    """Atomic write, mode 0600 from the first byte: it holds secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


@dataclass
class Tokens:
    access: str
    refresh: str | None
    id_token: str | None = None

    @property
    def claims(self) -> dict[str, Any]:
        return jwt_claims(self.access)

    def needs_refresh(self, now: float) -> bool:
        claims = self.claims
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            return False
        return now >= float(exp) - refresh_margin_s(claims)


# (path, json body) -> (status, body); the HTTP client supplies it so this module has no transport.
PostJson = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any]]]


class TokenKeeper:
    """Keeps a valid Bearer token: refresh before `exp`, refresh once on 401, else log in from env."""

    def __init__(
        self,
        *,
        auth_file: Path,
        base_url: str,
        email: str | None,
        password: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth_file = auth_file
        self.base_url = base_url
        self.email = email
        self.password = password
        self.clock = clock
        self.tokens: Tokens | None = None
        self._lock = anyio.Lock()
        self.refreshes = 0
        self.logins = 0
        self.log = get_logger(stage="auth")
        stored = read_auth_file(auth_file)
        if stored.get("token") and (not stored.get("base_url") or stored["base_url"].rstrip("/") == base_url):
            self.tokens = Tokens(stored["token"], stored.get("refresh_token"), stored.get("id_token"))
            self.email = self.email or stored.get("email")

    @property
    def user_id(self) -> str | None:
        sub = self.tokens.claims.get("sub") if self.tokens else None
        return str(sub) if sub else None

    async def token(self, post: PostJson) -> str:
        """A token that is not about to expire."""
        tokens = self.tokens
        if tokens is None or tokens.needs_refresh(self.clock()):
            await self.renew(post, stale=tokens.access if tokens else None)
        assert self.tokens is not None
        return self.tokens.access

    async def renew(self, post: PostJson, *, stale: str | None) -> None:
        """Refresh (or log in); concurrent callers holding the same stale token renew once."""
        async with self._lock:
            if self.tokens is not None and self.tokens.access != stale and not self.tokens.needs_refresh(self.clock()):
                return  # someone else already renewed it
            if self.tokens is not None and self.tokens.refresh:
                status, body = await post("/api/auth/refresh", {"refreshToken": self.tokens.refresh})
                if status == 200 and _tokens_in(body):
                    self._store(body, keep_refresh=self.tokens.refresh)
                    self.refreshes += 1
                    self.log.info("token refreshed")
                    return
                self.log.warning("token refresh refused", status=status)
            await self._login(post)

    async def login(self, post: PostJson) -> None:
        async with self._lock:
            await self._login(post)

    async def _login(self, post: PostJson) -> None:
        if not (self.email and self.password):
            raise CredentialsRejected(
                "no usable LeadGenius token: run `leadgenius-etl auth login`, or set LEADGENIUS_EMAIL and "
                "LEADGENIUS_PASSWORD"
            )
        status, body = await post("/api/auth", {"username": self.email, "password": self.password})
        if status != 200 or not _tokens_in(body):
            raise CredentialsRejected(f"LeadGenius refused the login for {self.email} (HTTP {status})")
        self._store(body, keep_refresh=None)
        self.logins += 1
        self.log.info("logged in", email=self.email)

    def _store(self, body: dict[str, Any], *, keep_refresh: str | None) -> None:
        t = body["tokens"]
        self.tokens = Tokens(t["accessToken"], t.get("refreshToken") or keep_refresh, t.get("idToken"))
        for secret in (self.tokens.access, self.tokens.refresh, self.tokens.id_token):
            register_secret(secret)
        data = read_auth_file(self.auth_file)
        if data.get("base_url") and data["base_url"].rstrip("/") != self.base_url:
            data = {}  # tokens of another deployment are useless here
        data.update(
            token=self.tokens.access,
            id_token=self.tokens.id_token,
            refresh_token=self.tokens.refresh,
            email=self.email,
            user_id=self.user_id,
            base_url=self.base_url,
        )
        write_auth_file(self.auth_file, data)


def _tokens_in(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("tokens"), dict) and bool(body["tokens"].get("accessToken"))


def with_bulk_credentials(settings: Settings) -> Settings:
    """The API key and user id from the environment, else from the auth file (`api_key`, `user_id`)."""
    if settings.api_key and settings.user_id:
        return settings
    stored = read_auth_file(settings.auth_file)
    stored_url = str(stored.get("base_url") or "").rstrip("/")
    if stored_url and stored_url != settings.base_url:
        return settings  # that file belongs to another deployment
    return replace(
        settings,
        api_key=settings.api_key or stored.get("api_key") or None,
        user_id=settings.user_id or stored.get("user_id") or None,
    )
