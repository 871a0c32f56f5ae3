"""Where the state lives: a path (SQLite) or a postgresql:// URL, and how to show it without its password."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from etl.errors import UsageError

URL_SCHEMES = ("postgresql", "postgres")
MASK = "***"


def is_state_url(value: str) -> bool:
    """A value with a scheme (`name://`) is a URL; anything else is a path to a SQLite file."""
    head, sep, _ = value.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum()


def check_state_url(url: str) -> str:
    """The URL as libpq takes it; UsageError for a scheme we do not speak (a typo, a MySQL URL)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql+psycopg", "postgresql+psycopg2"):  # SQLAlchemy spellings of the same URL
        url = "postgresql" + url[len(scheme):]
        scheme = "postgresql"
    if scheme not in URL_SCHEMES:
        raise UsageError(
            f"the state URL {mask_url(url)} is not a postgresql:// URL "
            "(LEADGENIUS_ETL_STATE takes a postgresql:// URL or the path of a SQLite file)"
        )
    return url


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
