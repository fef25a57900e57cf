"""Warden's settings: each declared once on ``Settings``, read and checked in one pass."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import marshmallow as ma
from dotenv import dotenv_values
from jwt import PyJWK, PyJWTError
from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

BASE_DIR = Path(__file__).resolve().parent
DOTENV_PATH = BASE_DIR / ".env"
ENVIRONMENTS = ("development", "testing", "production")
DEVELOPMENT_SECRET = "dev-insecure-secret-change-me-please-0000"
MIN_SECRET_BYTES = 32
# Durations beyond ten years are mistakes, and far larger ones overflow dates and timers.
MAX_SECONDS = 10 * 365 * 86_400
MAX_RETENTION_DAYS = 36_500
# A login lock is kept with the failure counters, which are forgotten after a day.
MAX_BACKOFF_SECONDS = 86_400
ASYMMETRIC_ALGORITHMS = ("RS256", "EdDSA")
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# The suite logs in hundreds of times from one address; limit tests set their own.
TESTING_LIMIT = "100000 per minute"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service; names every bad setting."""

    def __init__(self, problems: Mapping[str, Sequence[str]]) -> None:
        self.problems = {name: list(messages) for name, messages in problems.items()}
        lines = [f"  {name}: {'; '.join(messages)}" for name, messages in self.problems.items()]
        super().__init__("\n".join(["warden: configuration error:", *lines]))


class Required:
    """The default of a setting that must be set (in some environment)."""

    def __repr__(self) -> str:
        return "required"


REQUIRED = Required()


# Parsers: marshmallow fields, each reading a setting's raw string.


class Text(ma.fields.String):
    """Any text."""

    label: ClassVar[str] = "string"


class Integer(ma.fields.Integer):
    """A whole number, within ``minimum`` and ``maximum`` when given."""

    label: ClassVar[str] = "integer"

    def __init__(
        self, *, minimum: int | None = None, maximum: int | None = None, **kwargs: Any
    ) -> None:
        error = "must be between {min} and {max}, got {input}"
        if maximum is None:
            error = "must be at least {min}, got {input}"
        elif minimum is None:
            error = "must be at most {max}, got {input}"
        bounds = ma.validate.Range(min=minimum, max=maximum, error=error)
        invalid = {"invalid": "must be an integer, got {input!r}"}
        super().__init__(**{**kwargs, "validate": bounds, "error_messages": invalid})


class Flag(ma.fields.Boolean):
    """A boolean: 1/true/yes/on or 0/false/no/off, in any case."""

    label: ClassVar[str] = "boolean"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            truthy={"1", "true", "yes", "on"},
            falsy={"0", "false", "no", "off"},
            error_messages={"invalid": "must be true or false, got {input!r}"},
            **kwargs,
        )

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> bool:
        return super()._deserialize(str(value).strip().lower(), *args, **kwargs)


class Choice(ma.fields.String):
    """One of ``choices``, after folding to upper or lower case when ``case`` says so."""

    label: ClassVar[str] = "choice"

    def __init__(self, *, choices: Sequence[str], case: str | None = None, **kwargs: Any) -> None:
        self.case = case
        one_of = ma.validate.OneOf(choices, error="must be one of {choices}, got {input!r}")
        super().__init__(**{**kwargs, "validate": one_of})

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, *args, **kwargs)
        return {"upper": text.upper(), "lower": text.lower()}.get(self.case or "", text)


def database_url(raw: str) -> str:
    """Return a SQLAlchemy URL for psycopg 3, accepting Heroku's postgres:// form."""
    scheme, separator, rest = raw.partition("://")
    # Heroku's postgres://, plain postgresql:// and a psycopg2 URL all mean psycopg 3 here.
    if separator and scheme.lower() in ("postgres", "postgresql", "postgresql+psycopg2"):
        raw = "postgresql+psycopg://" + rest
    # Anything else would fail later, in a traceback of its own, on the first connection.
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError("is not a database URL") from None
    if url.drivername not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise ValueError(
            "must be a PostgreSQL (postgres://, postgresql://) or sqlite:// URL,"
            f" got a {url.drivername} one"
        )
    return raw


class DatabaseUrl(ma.fields.String):
    """A PostgreSQL or SQLite URL, rewritten for psycopg 3."""

    label: ClassVar[str] = "database URL"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> str:
        try:
            return database_url(super()._deserialize(value, *args, **kwargs))
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class RedisUrl(ma.fields.String):
    """A redis://, rediss:// or unix:// URL."""

    label: ClassVar[str] = "Redis URL"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> str:
        url = super()._deserialize(value, *args, **kwargs)
        if url.partition("://")[0].lower() not in ("redis", "rediss", "unix"):
            raise ma.ValidationError("must be a redis://, rediss:// or unix:// URL")
        return url


class BaseUrl(ma.fields.String):
    """A URL that paths are appended to (without its trailing slash)."""

    label: ClassVar[str] = "URL"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, *args, **kwargs).rstrip("/")


class Origins(ma.fields.String):
    """Comma-separated CORS origins, each exact."""

    label: ClassVar[str] = "list of origins"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> tuple[str, ...]:  # type: ignore[override]
        text = super()._deserialize(value, *args, **kwargs)
        origins = tuple(item.strip() for item in text.split(",") if item.strip())
        for origin in origins:
            # CORS is granted with credentials, so no wildcard or pattern.
            if not ORIGIN.fullmatch(origin):
                raise ma.ValidationError(
                    f"must list exact origins like https://app.example.com, got {origin!r}"
                )
        return origins


class RateLimit(ma.fields.String):
    """Limits in the ``limits`` notation, ``;`` between several."""

    label: ClassVar[str] = "rate limits"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, *args, **kwargs)
        try:
            limits = parse_many(text)
        except ValueError:
            raise ma.ValidationError("is not a valid limit, e.g. '10 per minute'") from None
        if any(limit.amount < 1 for limit in limits):
            # "0 per minute" would refuse every request it covers.
            raise ma.ValidationError("must allow at least 1 request per period")
        return text


def signing_keys(raw: str) -> tuple[dict[str, Any], ...]:
    """Parse a JWK Set of private signing keys; ValueError says what is wrong."""
    try:
        keys = json.loads(raw)["keys"]
        if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
            raise ValueError('"keys" must be a list of JWK objects')
        for key in keys:
            parsed = PyJWK(key)
            kid = key.get("kid")
            if not isinstance(kid, str) or not kid or key.get("alg") not in ASYMMETRIC_ALGORITHMS:
                raise ValueError("every key needs a kid (a string) and an alg of RS256 or EdDSA")
            if not hasattr(parsed.key, "sign"):
                raise ValueError(f"key {kid} is not a private key")
        kids = [key["kid"] for key in keys]
        if len(set(kids)) != len(kids):
            # Keys are found by kid: a repeated one would hide a key (the signing one, even).
            raise ValueError("two keys share a kid; give each key its own")
    except (ValueError, KeyError, TypeError, AttributeError, PyJWTError) as exc:
        raise ValueError(f"is not a valid JWK Set: {exc}") from None
    if not keys:
        raise ValueError("holds no key")
    if len({key["alg"] for key in keys}) != 1:
        raise ValueError("must use one algorithm for every key")
    return tuple(keys)


class JwkSet(ma.fields.String):
    """A JWK Set (JSON) of private RS256 or EdDSA keys."""

    label: ClassVar[str] = "JWK Set (JSON)"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], ...]:  # type: ignore[override]
        try:
            return signing_keys(super()._deserialize(value, *args, **kwargs))
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class Secrets(ma.fields.String):
    """Comma-separated secrets, each at least MIN_SECRET_BYTES long; the first is current."""

    label: ClassVar[str] = "list of secrets"

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> tuple[str, ...]:  # type: ignore[override]
        text = super()._deserialize(value, *args, **kwargs)
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        if not items:
            raise ma.ValidationError("holds no key")
        if any(len(item.encode()) < MIN_SECRET_BYTES for item in items):
            raise ma.ValidationError(f"every key must be at least {MIN_SECRET_BYTES} bytes")
        return items


PARSERS: tuple[type[ma.fields.Field[Any]], ...] = (
    Text,
    Integer,
    Flag,
    Choice,
    DatabaseUrl,
    RedisUrl,
    BaseUrl,
    Origins,
    RateLimit,
    JwkSet,
    Secrets,
)


@dataclass(frozen=True)
class Declaration:
    """How one setting is read: its parser, defaults, bounds and meaning."""

    group: str
    meaning: str
    parser: type[ma.fields.Field[Any]]
    default: Any
    by_environment: Mapping[str, Any]
    options: Mapping[str, Any]
    shown: str | None
    testing_variable: str | None
    required_unless: str | None
    secret: bool

    def default_for(self, app_env: str) -> Any:
        """The default under ``app_env``: a value, REQUIRED, or a function of the others."""
        return self.by_environment.get(app_env, self.default)


def setting(
    group: str,
    meaning: str,
    parser: type[ma.fields.Field[Any]],
    default: Any = None,
    *,
    development: Any = ...,
    testing: Any = ...,
    production: Any = ...,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: Sequence[str] = (),
    case: str | None = None,
    shown: str | None = None,
    testing_variable: str | None = None,
    required_unless: str | None = None,
    secret: bool = False,
) -> Any:
    """Declare a field of ``Settings``: everything about one environment variable.

    ``secret`` keeps the value out of repr(); a secret required in production must there be
    at least MIN_SECRET_BYTES long and not the development placeholder.
    """
    overrides = {"development": development, "testing": testing, "production": production}
    options: dict[str, Any] = {"minimum": minimum, "maximum": maximum} if parser is Integer else {}
    if choices:
        options = {"choices": tuple(choices), "case": case}
    declaration = Declaration(
        group=group,
        meaning=meaning,
        parser=parser,
        default=default,
        by_environment={name: value for name, value in overrides.items() if value is not ...},
        options=options,
        shown=shown,
        testing_variable=testing_variable,
        required_unless=required_unless,
        secret=secret,
    )
    return field(repr=not secret, metadata={"declaration": declaration})


CORE = "Core"
DATABASE = "Database (PostgreSQL)"
TOKENS = "Tokens and sessions"
ABUSE = "Passwords and abuse protection"
MAIL = "Mail, verification and audit"
SERVER = "Logging and server"
PASSKEYS = "Passkeys (WebAuthn)"
FACTORS = "Second factors"


def _web_concurrency(values: Mapping[str, Any]) -> int:
    # SQLite writes one transaction at a time and has no row locks: one worker process
    # keeps the embedded default's use cases (and in-process limits) from racing.
    return 1 if str(values["DATABASE_URL"]).startswith("sqlite") else 2


def _web_threads(values: Mapping[str, Any]) -> int:
    # Threads in one process race like processes do: the embedded default keeps one.
    return 1 if str(values["DATABASE_URL"]).startswith("sqlite") else 4


def _forwarded_allow_ips(values: Mapping[str, Any]) -> str:
    # Trust X-Forwarded-Proto only when the app trusts proxies for X-Forwarded-For too.
    return "*" if values["TRUSTED_PROXIES"] else "127.0.0.1"


def _webauthn_rp_id(values: Mapping[str, Any]) -> str:
    return urlsplit(values["FRONTEND_URL"] or "").hostname or "localhost"


def _webauthn_origins(values: Mapping[str, Any]) -> tuple[str, ...]:
    parts = urlsplit(values["FRONTEND_URL"] or "")
    return (f"{parts.scheme}://{parts.netloc}",) if parts.netloc else ()


def _mfa_keys(values: Mapping[str, Any]) -> tuple[str, ...]:
    # Outside production the Flask secret stands in, so development needs no extra setup.
    return (str(values["SECRET_KEY"]),)


def _prometheus_dir(values: Mapping[str, Any]) -> str:
    return str(Path(tempfile.gettempdir()) / f"warden-prometheus-{values['PORT']}")


@dataclass(frozen=True)
class Settings:
    """Every setting, typed; the fields below are the one declaration of each."""

    APP_ENV: str = setting(
        CORE, "the environment; picks the defaults below", Choice, "development",
        choices=ENVIRONMENTS,
    )  # fmt: skip
    SECRET_KEY: str = setting(
        CORE, "Flask secret", Text, DEVELOPMENT_SECRET,
        production=REQUIRED, secret=True, shown="a development placeholder",
    )  # fmt: skip
    DATABASE_URL: str = setting(
        CORE, "PostgreSQL (postgres://, postgresql://, run with psycopg 3) or sqlite:// URL",
        DatabaseUrl, f"sqlite:///{BASE_DIR / 'instance' / 'warden.db'}",
        testing="sqlite:///:memory:", testing_variable="TEST_DATABASE_URL",
        shown="SQLite file `instance/warden.db`",
    )  # fmt: skip
    REDIS_URL: str | None = setting(
        CORE, "Redis shared by every instance: sessions, caches, counters, mail queue",
        RedisUrl, testing_variable="TEST_REDIS_URL",
    )  # fmt: skip
    REDIS_TLS_VERIFY: bool = setting(
        CORE, "verify a rediss:// server's certificate (false for Heroku Redis)", Flag, True
    )
    READY_REQUIRES_REDIS: bool = setting(
        CORE, "/health/ready answers 503 when Redis does not", Flag, True
    )
    CORS_ORIGINS: tuple[str, ...] = setting(
        CORE, "browser origins allowed to call /api/* with credentials", Origins, ()
    )
    TRUSTED_PROXIES: int = setting(
        CORE, "proxies in front that append to X-Forwarded-For (0 ignores it)", Integer, 0,
        minimum=0,
    )  # fmt: skip
    HSTS: bool = setting(CORE, "send Strict-Transport-Security", Flag, False, production=True)
    METRICS_TOKEN: str | None = setting(
        CORE, "Bearer token GET /metrics requires (unset: open)", Text, secret=True
    )

    DB_POOL_SIZE: int = setting(
        DATABASE, "connections each process's pool keeps", Integer, 5, minimum=1
    )
    DB_MAX_OVERFLOW: int = setting(
        DATABASE, "extra connections a process may open under load", Integer, 10, minimum=0
    )
    DB_PRE_PING: bool = setting(
        DATABASE, "ping the server on every connection checkout", Flag, False
    )
    DB_STATEMENT_TIMEOUT_MS: int = setting(
        DATABASE, "statement_timeout of every connection, ms (0: none)", Integer, 10_000,
        minimum=0, maximum=2_147_483_647,
    )  # fmt: skip
    DB_PGBOUNCER: bool = setting(
        DATABASE, "behind PgBouncer in transaction mode: no prepared statements", Flag, False
    )

    JWT_SECRET_KEY: str = setting(
        TOKENS, "HS256 signing key, used when no key set is configured", Text,
        DEVELOPMENT_SECRET, production=REQUIRED, required_unless="JWT_SIGNING_KEYS",
        secret=True, shown="a development placeholder",
    )  # fmt: skip
    JWT_SIGNING_KEYS: tuple[dict[str, Any], ...] = setting(
        TOKENS, "private RS256 or EdDSA keys, each with kid and alg; the first signs", JwkSet,
        (), secret=True,
    )  # fmt: skip
    JWT_SIGNING_KEYS_FILE: str | None = setting(
        TOKENS, "file holding that JWK Set, read when JWT_SIGNING_KEYS is unset", Text
    )
    JWT_ISSUER: str = setting(TOKENS, "iss claim set and verified", Text, "warden")
    JWT_AUDIENCE: str = setting(TOKENS, "aud claim set and verified", Text, "warden")
    ACCESS_TOKEN_TTL: int = setting(
        TOKENS, "access token lifetime, seconds", Integer, 900, minimum=1, maximum=MAX_SECONDS
    )
    REFRESH_TOKEN_TTL: int = setting(
        TOKENS, "refresh token lifetime, seconds; renewed by each refresh", Integer, 2_592_000,
        minimum=1, maximum=MAX_SECONDS,
    )  # fmt: skip
    TOKEN_CACHE_SIZE: int = setting(
        TOKENS, "verified tokens each worker remembers until they expire (0: none)", Integer,
        4096, minimum=0,
    )  # fmt: skip
    REFRESH_REUSE_INTERVAL: int = setting(
        TOKENS, "seconds a rotated-away refresh token is still accepted (0: off)", Integer, 0,
        minimum=0, maximum=MAX_SECONDS,
    )  # fmt: skip
    COOKIE_SECURE: bool = setting(
        TOKENS, "Secure flag of the token cookies", Flag, True, development=False
    )
    COOKIE_SAMESITE: str = setting(
        TOKENS, "SameSite of the token cookies (None needs COOKIE_SECURE)", Choice, "Lax",
        choices=("Lax", "Strict", "None"),
    )  # fmt: skip
    COOKIE_DOMAIN: str | None = setting(
        TOKENS, "Domain of the token cookies (unset: host-only)", Text
    )

    BCRYPT_ROUNDS: int = setting(
        ABUSE, "bcrypt cost; other costs are upgraded on login", Integer, 12, testing=4,
        minimum=4, maximum=31,
    )  # fmt: skip
    HASHING_SLOTS: int = setting(
        ABUSE, "requests that hash a password at once per worker; more get 503 hashing_busy",
        Integer, 1, testing=64, minimum=1, maximum=64,
    )  # fmt: skip
    PASSWORD_CHECK_BREACHED: bool = setting(
        ABUSE, "refuse the 100,000 most common breached passwords", Flag, True
    )
    RATELIMIT_ENABLED: bool = setting(
        ABUSE, "rate limits on (the login backoff stays on)", Flag, True
    )
    RATELIMIT_DEFAULT: str = setting(
        ABUSE, "per client IP and route, for routes without a limit below", RateLimit,
        "300 per minute", testing=TESTING_LIMIT,
    )  # fmt: skip
    RATELIMIT_ACCOUNT: str = setting(
        ABUSE, "per account, for requests with an access token", RateLimit, "300 per minute",
        testing=TESTING_LIMIT,
    )  # fmt: skip
    RATELIMIT_LOGIN: str = setting(
        ABUSE, "POST /auth/login", RateLimit, "10 per minute;100 per hour",
        testing=TESTING_LIMIT,
    )  # fmt: skip
    RATELIMIT_REGISTER: str = setting(
        ABUSE, "POST /auth/register", RateLimit, "5 per minute;50 per hour",
        testing=TESTING_LIMIT,
    )  # fmt: skip
    RATELIMIT_REFRESH: str = setting(
        ABUSE, "POST /auth/refresh", RateLimit, "30 per minute", testing=TESTING_LIMIT
    )
    RATELIMIT_PASSWORD: str = setting(
        ABUSE, "routes that check or change a password", RateLimit, "5 per minute;30 per hour",
        testing=TESTING_LIMIT,
    )  # fmt: skip
    RATELIMIT_EMAIL: str = setting(
        ABUSE, "routes that send verification or reset mail", RateLimit,
        "5 per minute;20 per hour", testing=TESTING_LIMIT,
    )  # fmt: skip
    RATELIMIT_IPV6_PREFIX: int = setting(
        ABUSE, "IPv6 clients are counted per network of this prefix length (one site's /64)",
        Integer, 64, minimum=32, maximum=128,
    )  # fmt: skip
    MAIL_BUDGET: str = setting(
        ABUSE, "reset, verification or email-change mails per address and kind; no more are sent",
        RateLimit, "3 per hour", testing=TESTING_LIMIT,
    )  # fmt: skip
    LOGIN_FREE_FAILURES_PER_IP: int = setting(
        ABUSE, "failed logins per (account, IP) before the backoff", Integer, 5, minimum=1
    )
    LOGIN_BACKOFF_CAP_IP: int = setting(
        ABUSE, "longest wait per (account, IP), seconds", Integer, 900,
        minimum=1, maximum=MAX_BACKOFF_SECONDS,
    )  # fmt: skip
    LOGIN_FREE_FAILURES_PER_ACCOUNT: int = setting(
        ABUSE,
        "failed logins per account from unknown devices before their backoff",
        Integer,
        20,
        minimum=1,
    )
    LOGIN_BACKOFF_CAP_ACCOUNT: int = setting(
        ABUSE, "longest wait of the untrusted-device pool, seconds", Integer, 300,
        minimum=1, maximum=MAX_BACKOFF_SECONDS,
    )  # fmt: skip
    LOGIN_DEVICE_TTL: int = setting(
        ABUSE, "how long a device token exempts its device from the account lock, seconds",
        Integer, 30 * 24 * 3_600, minimum=60, maximum=MAX_SECONDS,
    )  # fmt: skip
    LOGIN_UNLOCK_TTL: int = setting(
        ABUSE, "lifetime of a mailed unlock link, and the least time between two, seconds",
        Integer, 900, minimum=60, maximum=MAX_SECONDS,
    )  # fmt: skip

    MAIL_BACKEND: str = setting(
        MAIL, "smtp sends; console logs each mail, links included", Choice, "console",
        production="smtp", choices=("console", "smtp"), case="lower",
    )  # fmt: skip
    MAIL_SERVER: str | None = setting(MAIL, "SMTP host; required for smtp", Text)
    MAIL_PORT: int = setting(MAIL, "SMTP port", Integer, 587, minimum=1, maximum=65_535)
    MAIL_USERNAME: str | None = setting(MAIL, "SMTP login, used when both are set", Text)
    MAIL_PASSWORD: str | None = setting(MAIL, "SMTP password", Text, secret=True)
    MAIL_USE_TLS: bool = setting(MAIL, "upgrade the connection with STARTTLS", Flag, True)
    MAIL_FROM: str = setting(MAIL, "From header", Text, "Warden <no-reply@localhost>")
    MAIL_TIMEOUT: int = setting(
        MAIL, "SMTP socket timeout, seconds", Integer, 10, minimum=1, maximum=3_600
    )
    FRONTEND_URL: str = setting(
        MAIL, "base of the links in mails", BaseUrl, "http://localhost:3000",
        production=REQUIRED,
    )  # fmt: skip
    REQUIRE_VERIFIED_EMAIL: bool = setting(
        MAIL, "refuse login until the address is confirmed", Flag, False
    )
    REGISTRATION_ENUMERATION_SAFE: bool = setting(
        MAIL, "registration answers 202 alike for new and taken addresses", Flag, False
    )
    LINKS_KEPT: int = setting(
        MAIL, "reset or verification links per account and kind valid at once", Integer, 3,
        minimum=1, maximum=20,
    )  # fmt: skip
    VERIFY_TOKEN_TTL: int = setting(
        MAIL, "email verification link lifetime, seconds", Integer, 86_400,
        minimum=60, maximum=MAX_SECONDS,
    )  # fmt: skip
    RESET_TOKEN_TTL: int = setting(
        MAIL, "password reset link lifetime, seconds", Integer, 3_600,
        minimum=60, maximum=MAX_SECONDS,
    )  # fmt: skip
    EMAIL_CHANGE_TOKEN_TTL: int = setting(
        MAIL, "email change link lifetime, seconds", Integer, 86_400,
        minimum=60, maximum=MAX_SECONDS,
    )  # fmt: skip
    AUDIT_RETENTION_DAYS: int = setting(
        MAIL, "days of audit events flask audit prune keeps", Integer, 365,
        minimum=1, maximum=MAX_RETENTION_DAYS,
    )  # fmt: skip

    WEBAUTHN_RP_ID: str = setting(
        PASSKEYS, "relying party id: the domain passkeys are bound to", Text, _webauthn_rp_id,
        shown="the host of FRONTEND_URL",
    )  # fmt: skip
    WEBAUTHN_RP_NAME: str = setting(
        PASSKEYS, "the name authenticators show for this service", Text, "Warden"
    )
    WEBAUTHN_ORIGINS: tuple[str, ...] = setting(
        PASSKEYS, "origins whose pages may run a passkey ceremony", Origins, _webauthn_origins,
        shown="the origin of FRONTEND_URL",
    )  # fmt: skip
    WEBAUTHN_CHALLENGE_TTL: int = setting(
        PASSKEYS, "lifetime of a passkey ceremony's challenge, seconds", Integer, 300,
        minimum=30, maximum=3_600,
    )  # fmt: skip

    SIGN_IN_CHALLENGE_TTL: int = setting(
        FACTORS, "seconds a sign-in waits for its second factor", Integer, 300,
        minimum=30, maximum=3600,
    )  # fmt: skip
    STEP_UP_MAX_AGE: int = setting(
        FACTORS, "seconds a proved second factor counts for lowering protection", Integer, 900,
        minimum=60, maximum=MAX_SECONDS,
    )  # fmt: skip
    MFA_ENCRYPTION_KEYS: tuple[str, ...] = setting(
        FACTORS, "keys encrypting TOTP secrets at rest, comma-separated; the first encrypts",
        Secrets, _mfa_keys, production=REQUIRED, secret=True,
        shown="derived from SECRET_KEY (required in production)",
    )  # fmt: skip
    MFA_ISSUER: str = setting(
        FACTORS, "the issuer authenticator apps show next to the account", Text, "Warden"
    )
    ADMIN_REQUIRE_SECOND_FACTOR: bool = setting(
        FACTORS, "admin routes refuse a session that did not pass a second factor", Flag, False,
    )  # fmt: skip

    LOG_LEVEL: str = setting(
        SERVER, "log level", Choice, "INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), case="upper",
    )  # fmt: skip
    LOG_FORMAT: str = setting(
        SERVER, "json (one object per line) or console (readable)", Choice, "json",
        choices=("json", "console"), case="lower",
    )  # fmt: skip
    PORT: int = setting(SERVER, "port gunicorn binds", Integer, 8000, minimum=0, maximum=65_535)
    HOST: str = setting(SERVER, "address gunicorn binds", Text, "0.0.0.0")  # noqa: S104
    WEB_CONCURRENCY: int = setting(
        SERVER, "gunicorn worker processes", Integer, _web_concurrency, minimum=1,
        shown="`2`; `1` on SQLite",
    )  # fmt: skip
    WEB_THREADS: int = setting(
        SERVER, "threads per gunicorn worker (gthread); 1 runs sync workers", Integer,
        _web_threads, minimum=1, maximum=64, shown="`4`; `1` on SQLite",
    )  # fmt: skip
    FORWARDED_ALLOW_IPS: str = setting(
        SERVER, "peers whose X-Forwarded-Proto gunicorn trusts", Text, _forwarded_allow_ips,
        shown="`*` when TRUSTED_PROXIES is 1 or more, else `127.0.0.1`",
    )  # fmt: skip
    GUNICORN_ACCESS_LOG: bool = setting(
        SERVER, "add gunicorn's own access line to the app's", Flag, False
    )
    PROMETHEUS_MULTIPROC_DIR: str = setting(
        SERVER, "where one instance's gunicorn workers share metric samples", Text,
        _prometheus_dir, shown="`<temp dir>/warden-prometheus-<PORT>`",
    )  # fmt: skip

    @property
    def JWT_ALGORITHM(self) -> str:  # noqa: N802 (named like the setting it derives from)
        """RS256 or EdDSA with a key set, else HS256."""
        return str(self.JWT_SIGNING_KEYS[0]["alg"]) if self.JWT_SIGNING_KEYS else "HS256"


DECLARATIONS: dict[str, Declaration] = {
    item.name: item.metadata["declaration"] for item in fields(Settings)
}


def parse(declaration: Declaration, raw: str) -> tuple[Any, list[str]]:
    """``raw`` read by the setting's marshmallow field, or None and what is wrong with it."""
    try:
        return declaration.parser(**declaration.options).deserialize(raw), []
    except ma.ValidationError as exc:
        return None, exc.messages if isinstance(exc.messages, list) else [str(exc)]


def with_dotenv(
    environ: Mapping[str, str], path: Path, problems: dict[str, list[str]]
) -> dict[str, str]:
    """``environ`` with .env's values under it, when the real APP_ENV allows reading .env."""
    if not path.is_file():
        return dict(environ)
    values = {name: value for name, value in dotenv_values(path).items() if value is not None}
    # Refused in every environment: `flask` copies .env into the process environment
    # itself, where its APP_ENV would pass for the real one.
    if "APP_ENV" in values:
        problems["APP_ENV"].append(f"{path.name} cannot set it; set APP_ENV in the environment")
    if (environ.get("APP_ENV") or "development") != "development":
        return dict(environ)
    return {**values, **environ}


def load_settings(
    environ: Mapping[str, str] | None = None, *, dotenv_path: Path | None = None
) -> Settings:
    """Read every setting from ``environ`` (default: the process environment and .env).

    One pass checks them all: ConfigError names every bad or missing setting.
    """
    if environ is None:
        environ, dotenv_path = os.environ, dotenv_path or DOTENV_PATH
    problems: dict[str, list[str]] = defaultdict(list)
    source = with_dotenv(environ, dotenv_path, problems) if dotenv_path else dict(environ)
    values: dict[str, Any] = {}
    app_env = "development"
    for name, declaration in DECLARATIONS.items():
        default = declaration.default_for(app_env)
        variable = name
        if app_env == "testing" and declaration.testing_variable:
            variable = declaration.testing_variable
        raw = source.get(variable)
        if raw in (None, ""):  # an empty value counts as unset
            values[name] = None if default is REQUIRED or callable(default) else default
        else:
            values[name], messages = parse(declaration, raw)
            if messages:
                problems[variable].extend(messages)
        if name == "APP_ENV":
            app_env = values[name] or "development"
    for name, message in _cross_checks(values, app_env, source):
        problems[name].append(message)
    if problems:
        order = list(DECLARATIONS)
        ranked = sorted(problems, key=lambda name: _rank(order, name))
        raise ConfigError({name: problems[name] for name in ranked})
    for name, declaration in DECLARATIONS.items():
        default = declaration.default_for(app_env)
        if values[name] is None and callable(default):
            values[name] = default(values)
    return Settings(**values)


def _rank(order: list[str], name: str) -> int:
    base = name.removeprefix("TEST_").removesuffix("_FILE")
    return order.index(base) if base in order else len(order)


def _cross_checks(
    values: dict[str, Any], app_env: str, source: Mapping[str, str]
) -> Iterator[tuple[str, str]]:
    """Rules between settings; fills ``values`` where one setting stands in for another."""
    keys_file = values["JWT_SIGNING_KEYS_FILE"]
    if not source.get("JWT_SIGNING_KEYS") and keys_file:
        try:
            values["JWT_SIGNING_KEYS"] = signing_keys(Path(keys_file).read_text())
        except OSError as exc:
            yield "JWT_SIGNING_KEYS_FILE", f"cannot be read: {exc.strerror}"
        except ValueError as exc:
            yield "JWT_SIGNING_KEYS_FILE", str(exc)
    for name, declaration in DECLARATIONS.items():
        if declaration.default_for(app_env) is not REQUIRED or values[name] is not None:
            continue
        if source.get(declaration.testing_variable or name) not in (None, ""):
            continue  # set, but its parser refused it and said why
        if declaration.required_unless and values[declaration.required_unless]:
            values[name] = ""
        else:
            yield name, f"required in {app_env}"
    if app_env == "production":
        for name, declaration in DECLARATIONS.items():
            strong = declaration.secret and declaration.default_for(app_env) is REQUIRED
            if strong and values[name] and isinstance(values[name], str):
                yield from _weak_secret(name, values[name])
        if values["MAIL_BACKEND"] == "console":
            # The console backend logs message bodies, reset links included.
            yield "MAIL_BACKEND", "console would log reset links; use smtp in production"
    if values["COOKIE_SAMESITE"] == "None" and values["COOKIE_SECURE"] is False:
        # Browsers drop such cookies: cookie mode would fail without a word.
        yield "COOKIE_SAMESITE", "None needs COOKIE_SECURE=true"
    if values["MAIL_BACKEND"] == "smtp" and not values["MAIL_SERVER"]:
        yield "MAIL_SERVER", "required when MAIL_BACKEND is smtp"
    yield from _passkey_checks(values)


def _passkey_checks(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every passkey origin must lie within the relying party id, or no ceremony succeeds."""
    if not values["FRONTEND_URL"] and not (values["WEBAUTHN_RP_ID"] and values["WEBAUTHN_ORIGINS"]):
        return  # FRONTEND_URL is reported missing already
    rp_id = values["WEBAUTHN_RP_ID"] or _webauthn_rp_id(values)
    for origin in values["WEBAUTHN_ORIGINS"] or _webauthn_origins(values):
        host = urlsplit(origin).hostname or ""
        if host != rp_id and not host.endswith("." + rp_id):
            yield "WEBAUTHN_ORIGINS", f"{origin} is not within WEBAUTHN_RP_ID {rp_id!r}"


def _weak_secret(name: str, value: str) -> Iterator[tuple[str, str]]:
    if len(value.encode()) < MIN_SECRET_BYTES:
        yield name, f"must be at least {MIN_SECRET_BYTES} bytes"
    elif value == DEVELOPMENT_SECRET:
        yield name, "must not be the development placeholder"


def settings_or_exit() -> Settings:
    """The process's settings; exit non-zero with every configuration error otherwise."""
    try:
        return load_settings()
    except ConfigError as exc:
        # One message, not a traceback, for gunicorn, its workers and every flask command.
        raise SystemExit(str(exc)) from None


def engine_options(settings: Settings) -> dict[str, Any]:
    """Return engine options suited to the database behind DATABASE_URL."""
    # Error messages never carry bound parameters (emails, hashes) into logs.
    if not settings.DATABASE_URL.startswith("postgresql"):
        return {"hide_parameters": True}
    # Fail fast instead of hanging when the database is unreachable or stuck.
    connect_args: dict[str, Any] = {
        "connect_timeout": 2,
        # A server that vanished without closing (a failover, a NAT that forgot the flow)
        # is noticed by TCP keepalives within 90 s on an idle socket, which then reads as
        # closed and is replaced (core/db_liveness.py), and within 30 s when data sent to
        # it goes unacknowledged: the statement then fails (503) instead of hanging.
        "keepalives": 1,
        "keepalives_idle": 60,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }
    if settings.DB_PGBOUNCER:
        # PgBouncer in transaction mode keeps no server-side prepared statements, and may
        # refuse startup options: set statement_timeout on the database role instead.
        connect_args["prepare_threshold"] = None
    elif settings.DB_STATEMENT_TIMEOUT_MS:
        connect_args["options"] = f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS}"
    return {
        # A dead pooled connection is found by a look at its socket on checkout
        # (core/db_liveness.py); DB_PRE_PING=true adds a round trip to the server as well.
        "pool_pre_ping": settings.DB_PRE_PING,
        "pool_timeout": 2,
        "pool_size": settings.DB_POOL_SIZE,
        "max_overflow": settings.DB_MAX_OVERFLOW,
        "hide_parameters": True,
        "connect_args": connect_args,
    }


def redis_tls_options(url: str | None, *, verify: bool) -> dict[str, Any]:
    """Client options for a rediss:// URL whose certificate should not be verified."""
    if url and url.lower().startswith("rediss://") and not verify:
        return {"ssl_cert_reqs": None}
    return {}


def flask_config(settings: Settings) -> dict[str, Any]:
    """What Flask and its extensions read from ``app.config``, derived from ``settings``."""
    return {
        "TESTING": settings.APP_ENV == "testing",
        "SECRET_KEY": settings.SECRET_KEY,
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "SQLALCHEMY_DATABASE_URI": settings.DATABASE_URL,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(settings),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "JWT_SECRET_KEY": settings.JWT_SECRET_KEY,
        "JWT_ALGORITHM": settings.JWT_ALGORITHM,
        # Only the configured algorithm is accepted: no "none", no HS256 when keys are RSA.
        "JWT_DECODE_ALGORITHMS": [settings.JWT_ALGORITHM],
        "JWT_TOKEN_LOCATION": ["headers", "cookies"],
        "JWT_COOKIE_SECURE": settings.COOKIE_SECURE,
        "JWT_COOKIE_SAMESITE": settings.COOKIE_SAMESITE,
        "JWT_COOKIE_DOMAIN": settings.COOKIE_DOMAIN,
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_CSRF_IN_COOKIES": True,
        "JWT_ACCESS_COOKIE_PATH": "/",
        "JWT_REFRESH_COOKIE_PATH": "/api/v1/auth/refresh",
        "JWT_ACCESS_CSRF_COOKIE_PATH": "/",
        # Sent to /auth/refresh and /auth/csrf, so a reloaded page can fetch it again.
        "JWT_REFRESH_CSRF_COOKIE_PATH": "/api/v1/auth",
        "JWT_SESSION_COOKIE": False,
        "JWT_ENCODE_ISSUER": settings.JWT_ISSUER,
        "JWT_DECODE_ISSUER": settings.JWT_ISSUER,
        "JWT_ENCODE_AUDIENCE": settings.JWT_AUDIENCE,
        "JWT_DECODE_AUDIENCE": settings.JWT_AUDIENCE,
        "JWT_DECODE_LEEWAY": 10,
        "JWT_ERROR_MESSAGE_KEY": "detail",
        "RATELIMIT_ENABLED": settings.RATELIMIT_ENABLED,
        "RATELIMIT_STORAGE_URI": settings.REDIS_URL or "memory://",
        "RATELIMIT_STRATEGY": "sliding-window-counter",
        "RATELIMIT_KEY_PREFIX": "warden-rl",
        # Warden writes the rate-limit headers itself (api/middleware.py), so that the
        # library's Retry-After never overrides the login throttle's own.
        "RATELIMIT_HEADERS_ENABLED": False,
        # If Redis fails, count in process memory rather than refusing every request.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Like Warden's own Redis client: a sick Redis must not stall requests.
        "RATELIMIT_STORAGE_OPTIONS": {
            "socket_timeout": 0.5,
            "socket_connect_timeout": 0.5,
            **redis_tls_options(settings.REDIS_URL, verify=settings.REDIS_TLS_VERIFY),
        },
        "API_TITLE": "Warden",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Served by Warden itself (project/api/docs.py), with the templates in project/templates.
        "OPENAPI_SWAGGER_UI_URL": "/api/v1/docs/assets/swagger-ui/",
        # "Authorize" survives page reloads.
        "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True},
        "OPENAPI_REDOC_PATH": "redoc",
        "OPENAPI_REDOC_URL": "/api/v1/docs/assets/redoc/redoc.standalone.js",
    }


RATELIMIT_SETTINGS = tuple(
    name for name, declaration in DECLARATIONS.items() if declaration.parser is RateLimit
)
