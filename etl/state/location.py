"""Where the state lives: a path (SQLite) or a postgresql:// URL, and how to show it without its password."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from etl.errors import UsageError

URL_SCHEMES = ("postgresql", "postgres")
MASK = "***"

# libpq parameters that take one of a fixed set of words, with the environment variable libpq reads when
# the URL leaves the parameter out. libpq checks them only when it connects, and its refusal reads like a
# failed connection (exit 3); a typo in the configuration is a usage error (exit 2), found before connecting.
CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sslmode": ("PGSSLMODE", ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")),
    "gssencmode": ("PGGSSENCMODE", ("disable", "prefer", "require")),
    "channel_binding": ("PGCHANNELBINDING", ("disable", "prefer", "require")),
    "target_session_attrs": ("PGTARGETSESSIONATTRS",
                             ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")),
}


def is_state_url(value: str) -> bool:
    """A value with a scheme (`name://`) is a URL; anything else is a path to a SQLite file."""
    head, sep, _ = value.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum()


def check_state_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """The URL as libpq takes it, checked before any connection: UsageError (one line, password masked) for
    a scheme we do not speak (a typo, a MySQL URL), a URL libpq cannot parse, or a parameter value libpq
    would refuse (`sslmode=requir`, or PGSSLMODE in `environ`, the process environment by default)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql+psycopg", "postgresql+psycopg2"):  # SQLAlchemy spellings of the same URL
        url = "postgresql" + url[len(scheme):]
        scheme = "postgresql"
    if scheme not in URL_SCHEMES:
        raise UsageError(
            f"the state URL {mask_url(url)} is not a postgresql:// URL "
            "(LEADGENIUS_ETL_STATE takes a postgresql:// URL or the path of a SQLite file)"
        )
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)  # libpq's own parser: unknown parameters, bad percent-escapes, a bad port
    except ProgrammingError as exc:
        raise UsageError(f"the state URL {mask_url(url)} is not valid: {_without_password(str(exc), url)}") from None
    environ = os.environ if environ is None else environ
    given = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    for name, (variable, valid) in CHOICES.items():
        values = [value for key, value in given if key == name]
        where = f"the state URL {mask_url(url)} has {name}="
        if not values and environ.get(variable):
            values, where = [environ[variable]], f"{variable} (read by libpq for the state URL {mask_url(url)}) is "
        for value in values:
            if value not in valid:
                raise UsageError(f"{where}{value!r}, not a valid {name}: use one of {', '.join(valid)}")
    return url


def _without_password(text: str, url: str) -> str:
    """libpq's message about a URL, which may quote the part holding the password, made safe to show."""
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    raw = urlsplit(url).password
    for secret in (raw, url_password(url)):
        if secret:
            text = text.replace(secret, MASK)
    return text


def url_password(url: str) -> str | None:
    """The password in a URL, from its user-info or a `password=` query parameter."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***: what logs, reports and errors show."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k == "password" for k, _ in pairs):
            query = urlencode([(k, MASK if k == "password" else v) for k, v in pairs], safe="*", quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def database_identity(url: str) -> tuple[str, str, str]:
    """(host, port, database) of a URL, loopback spellings made one: two URLs naming the same database
    differ only in who logs in and how."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    host = (parts.hostname or params.get("host") or "localhost").lower()
    if host in ("localhost", "127.0.0.1", "::1"):
        host = "localhost"
    port = str(parts.port or params.get("port") or 5432)
    database = unquote(parts.path.lstrip("/")) or params.get("dbname") or unquote(parts.username or "")
    return host, port, database
