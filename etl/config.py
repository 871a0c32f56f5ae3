"""Configuration: flags over environment over the auth file over defaults (SPEC Part B)."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from etl.errors import ConfigError, UsageError
from etl.log import register_secret
from etl.state.location import check_state_url, is_state_url, url_password

DEFAULT_BASE_URL = "https://last.leadgenius.app"
DEFAULT_HUBSPOT_URL = "https://api.hubapi.com"
DEFAULT_LEADSCRAPER_URL = "https://api.leadscraper.com/v1"


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    auth_file: Path = field(default_factory=lambda: Path("~/.leadgenius_auth.json").expanduser())
    email: str | None = None
    password: str | None = None
    api_key: str | None = None
    user_id: str | None = None
    hubspot_token: str | None = None
    hubspot_base_url: str = DEFAULT_HUBSPOT_URL
    leadscraper_api_key: str | None = None
    leadscraper_base_url: str = DEFAULT_LEADSCRAPER_URL
    state_path: Path = field(default_factory=lambda: Path(".leadgenius-etl/state.db"))
    state_url: str | None = field(default=None, repr=False)  # a postgresql:// URL; when set, state_path is unused
    allow_insecure_http: bool = False
    timeout_s: float = 30.0
    base_url_from_user: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, state: str | Path | None = None,
                 **overrides: object) -> Settings:
        """`state`: a path or a postgresql:// URL (the --state flag), over LEADGENIUS_ETL_STATE."""
        env = os.environ if env is None else env
        base = env.get("LEADGENIUS_BASE_URL")
        settings = cls(
            base_url=(base or DEFAULT_BASE_URL).rstrip("/"),
            base_url_from_user=bool(base),
            auth_file=Path(env.get("LEADGENIUS_AUTH_FILE") or "~/.leadgenius_auth.json").expanduser(),
            email=env.get("LEADGENIUS_EMAIL") or None,
            password=env.get("LEADGENIUS_PASSWORD") or None,
            api_key=env.get("LEADGENIUS_API_KEY") or None,
            user_id=env.get("LEADGENIUS_USER_ID") or None,
            hubspot_token=env.get("HUBSPOT_ACCESS_TOKEN") or None,
            hubspot_base_url=(env.get("HUBSPOT_BASE_URL") or DEFAULT_HUBSPOT_URL).rstrip("/"),
            leadscraper_api_key=env.get("LEADSCRAPER_API_KEY") or None,
            leadscraper_base_url=(env.get("LEADSCRAPER_BASE_URL") or DEFAULT_LEADSCRAPER_URL).rstrip("/"),
            **state_location(str(state) if state else env.get("LEADGENIUS_ETL_STATE") or ".leadgenius-etl/state.db"),
            allow_insecure_http=env.get("LEADGENIUS_ALLOW_INSECURE_HTTP", "") in ("1", "true", "yes"),
            timeout_s=float(env.get("LEADGENIUS_TIMEOUT_S") or 30.0),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "base_url" in clean:
            clean["base_url"] = str(clean["base_url"]).rstrip("/")
            clean["base_url_from_user"] = True
        settings = replace(settings, **clean)  # type: ignore[arg-type]
        for secret in (settings.password, settings.api_key, settings.hubspot_token, settings.leadscraper_api_key):
            register_secret(secret)
        if settings.state_url:
            register_secret(url_password(settings.state_url))
        return settings


def state_location(value: str) -> dict[str, Any]:
    """Settings fields for LEADGENIUS_ETL_STATE / --state: a postgresql:// URL, or the path of a SQLite file."""
    if is_state_url(value):
        url = check_state_url(value)
        register_secret(url_password(url))
        return {"state_url": url}
    return {"state_path": Path(value).expanduser(), "state_url": None}


def read_toml(path: Path | Traversable, what: str) -> dict[str, Any]:
    """A user's TOML file (mapping, job), or ConfigError with one clear line saying what is wrong."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} path is a directory: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure_http: bool, what: str = "base URL") -> str:
    """Refuse plain http:// except on loopback: tokens would travel in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(url) and not allow_insecure_http:
        raise UsageError(
            f"refusing plain http:// to {parts.hostname}: credentials would travel unencrypted "
            "(use https, or --allow-insecure-http if you really mean it)"
        )
    return url.rstrip("/")
