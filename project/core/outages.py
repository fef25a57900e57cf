"""One-line reasons why the database or Redis cannot be used, without secrets."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.exceptions import RedisError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

REDACTED = "***"


def describe_database_error(exc: SQLAlchemyError, url: str | URL) -> str:
    """Say why the database at ``url`` failed, e.g. 'database unreachable at h:5432: ...'."""
    url = make_url(url)
    driver: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    # psycopg: 'connection to server at "h", port 5432 failed: FATAL:  <reason>'; the
    # location is given once from the URL instead.
    reason = _first_line(driver).rpartition(" failed: ")[2].removeprefix("FATAL:").strip()
    reason = reason[:1].lower() + reason[1:]
    where = url.database if url.get_backend_name() == "sqlite" else _host_port(url)
    if reason.startswith("database ") and reason.endswith("does not exist"):
        line = f"{reason} at {where}"
    else:
        line = f"database unreachable at {where}: {reason or type(driver).__name__}"
    return _redact(line, url.password)


def describe_redis_error(exc: RedisError, url: str | None) -> str:
    """Say why Redis failed, e.g. 'Redis unreachable: Error 111 connecting to h:6379. ...'."""
    password = urlsplit(url).password if url else None
    return _redact(f"Redis unreachable: {_first_line(exc) or type(exc).__name__}", password)


def _host_port(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else ""


def _redact(line: str, password: object) -> str:
    return line.replace(str(password), REDACTED) if password else line
