"""Configuration read from the environment (12-factor), one class per APP_ENV."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import load_dotenv
from jwt import PyJWK, PyJWTError
from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

BASE_DIR = Path(__file__).resolve().parent
MIN_SECRET_BYTES = 32
ENVIRONMENTS = ("development", "testing", "production")
ASYMMETRIC_ALGORITHMS = ("RS256", "EdDSA")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RATELIMIT_SETTINGS = (
    "RATELIMIT_DEFAULT",
    "RATELIMIT_ACCOUNT",
    "RATELIMIT_LOGIN",
    "RATELIMIT_REGISTER",
    "RATELIMIT_REFRESH",
    "RATELIMIT_PASSWORD",
    "RATELIMIT_EMAIL",
)


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


def database_url(raw: str | None, name: str = "DATABASE_URL") -> str:
    """Return a SQLAlchemy URL for psycopg 3, accepting Heroku's postgres:// form."""
    if not raw:
        return f"sqlite:///{BASE_DIR / 'instance' / 'warden.db'}"
    scheme, separator, rest = raw.partition("://")
    # Heroku's postgres://, plain postgresql:// and a psycopg2 URL all mean psycopg 3 here.
    if separator and scheme.lower() in ("postgres", "postgresql", "postgresql+psycopg2"):
        raw = "postgresql+psycopg://" + rest
    # Anything else would fail later, in a traceback of its own, on the first connection.
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"{name} is not a database URL") from None
    if url.drivername not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise ConfigError(
            f"{name} must be a PostgreSQL (postgres://, postgresql://) or sqlite:// URL,"
            f" got a {url.drivername} one"
        )
    return raw


# Durations beyond ten years are mistakes, and far larger ones overflow dates and timers.
MAX_SECONDS = 10 * 365 * 86_400
MAX_RETENTION_DAYS = 36_500
# A login lock is kept with the failure counters, which are forgotten after a day.
MAX_BACKOFF_SECONDS = 86_400


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _list(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def _origins(raw: str | None) -> list[str]:
    """CORS origins, each exact: CORS is granted with credentials, so no wildcard or pattern."""
    origins = _list(raw)
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS_ORIGINS must list exact origins like https://app.example.com, got {origin!r}"
            )
    return origins


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off, any case; unset is ``default``."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def signing_keys(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Read the JWK Set of signing keys from JWT_SIGNING_KEYS or JWT_SIGNING_KEYS_FILE."""
    raw = env.get("JWT_SIGNING_KEYS")
    path = env.get("JWT_SIGNING_KEYS_FILE")
    if not raw and path:
        try:
            raw = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"JWT_SIGNING_KEYS_FILE cannot be read: {exc.strerror}") from None
    if not raw:
        return []
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
        source = "JWT_SIGNING_KEYS" if env.get("JWT_SIGNING_KEYS") else "JWT_SIGNING_KEYS_FILE"
        raise ConfigError(f"{source} is not a valid JWK Set: {exc}") from None
    if not keys:
        raise ConfigError("JWT_SIGNING_KEYS holds no key")
    if len({key["alg"] for key in keys}) != 1:
        raise ConfigError("JWT_SIGNING_KEYS must use one algorithm for every key")
    return list(keys)


class Config:
    """Settings shared by every environment; values come from ``env``."""

    APP_ENV = "development"
    TESTING = False
    DEFAULT_SECRET = "dev-insecure-secret-change-me-please-0000"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.SECRET_KEY = env.get("SECRET_KEY") or self.DEFAULT_SECRET
        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY") or self.DEFAULT_SECRET
        self.SQLALCHEMY_DATABASE_URI = database_url(env.get("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI, env)
        self.REDIS_URL = env.get("REDIS_URL") or None
        # Heroku Redis serves TLS with a self-signed certificate: it needs this set to false.
        self.REDIS_TLS_VERIFY = env_bool(env, "REDIS_TLS_VERIFY", True)
        self.READY_REQUIRES_REDIS = env_bool(env, "READY_REQUIRES_REDIS", True)
        self.ACCESS_TOKEN_TTL = _int(env, "ACCESS_TOKEN_TTL", 900, minimum=1, maximum=MAX_SECONDS)
        self.REFRESH_TOKEN_TTL = _int(
            env, "REFRESH_TOKEN_TTL", 2_592_000, minimum=1, maximum=MAX_SECONDS
        )
        # Verified tokens each worker remembers until they expire (0: verify every time).
        self.TOKEN_CACHE_SIZE = _int(env, "TOKEN_CACHE_SIZE", 4096, minimum=0)
        self.BCRYPT_ROUNDS = _int(env, "BCRYPT_ROUNDS", 12, minimum=4, maximum=31)
        self.CORS_ORIGINS = _origins(env.get("CORS_ORIGINS"))
        self.LOG_LEVEL = (env.get("LOG_LEVEL") or "INFO").upper()
        if self.LOG_LEVEL not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        self.LOG_FORMAT = (env.get("LOG_FORMAT") or "json").lower()
        if self.LOG_FORMAT not in ("json", "console"):
            raise ConfigError("LOG_FORMAT must be json or console")
        self.PORT = _int(env, "PORT", 8000, maximum=65_535)
        self.METRICS_TOKEN = env.get("METRICS_TOKEN") or None
        # SQLite writes one transaction at a time and has no row locks: one worker process
        # keeps the embedded default's use cases (and in-process limits) from racing.
        embedded = self.SQLALCHEMY_DATABASE_URI.startswith("sqlite")
        self.WEB_CONCURRENCY = _int(env, "WEB_CONCURRENCY", 1 if embedded else 2, minimum=1)

        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.MAX_CONTENT_LENGTH = 64 * 1024
        self.REFRESH_REUSE_INTERVAL = _int(env, "REFRESH_REUSE_INTERVAL", 0, maximum=MAX_SECONDS)
        self.TRUSTED_PROXIES = _int(env, "TRUSTED_PROXIES", 0)
        self.HSTS = env_bool(env, "HSTS", self.APP_ENV == "production")

        self.JWT_SIGNING_KEYS = signing_keys(env)
        self.JWT_ALGORITHM = self.JWT_SIGNING_KEYS[0]["alg"] if self.JWT_SIGNING_KEYS else "HS256"
        # Only the configured algorithm is accepted: no "none", no HS256 when keys are RSA.
        self.JWT_DECODE_ALGORITHMS = [self.JWT_ALGORITHM]
        self.JWT_TOKEN_LOCATION = ["headers", "cookies"]
        self.JWT_COOKIE_SECURE = env_bool(env, "COOKIE_SECURE", self.APP_ENV != "development")
        self.JWT_COOKIE_SAMESITE = env.get("COOKIE_SAMESITE") or "Lax"
        if self.JWT_COOKIE_SAMESITE not in ("Lax", "Strict", "None"):
            raise ConfigError("COOKIE_SAMESITE must be Lax, Strict or None")
        if self.JWT_COOKIE_SAMESITE == "None" and not self.JWT_COOKIE_SECURE:
            # Browsers drop such cookies: cookie mode would fail without a word.
            raise ConfigError("COOKIE_SAMESITE=None needs COOKIE_SECURE=true")
        self.JWT_COOKIE_DOMAIN = env.get("COOKIE_DOMAIN") or None
        self.JWT_COOKIE_CSRF_PROTECT = True
        self.JWT_CSRF_IN_COOKIES = True
        self.JWT_ACCESS_COOKIE_PATH = "/"
        self.JWT_REFRESH_COOKIE_PATH = "/api/v1/auth/refresh"
        self.JWT_ACCESS_CSRF_COOKIE_PATH = "/"
        # Sent to /auth/refresh and /auth/csrf, so a reloaded page can fetch it again.
        self.JWT_REFRESH_CSRF_COOKIE_PATH = "/api/v1/auth"
        self.JWT_SESSION_COOKIE = False

        self.RATELIMIT_ENABLED = env_bool(env, "RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        self.RATELIMIT_STRATEGY = "sliding-window-counter"
        self.RATELIMIT_KEY_PREFIX = "warden-rl"
        # Warden writes the rate-limit headers itself (api/middleware.py), so that the
        # library's Retry-After never overrides the login throttle's own.
        self.RATELIMIT_HEADERS_ENABLED = False
        # If Redis fails, count in process memory rather than refusing every request.
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # Like Warden's own Redis client: a sick Redis must not stall requests.
        self.RATELIMIT_STORAGE_OPTIONS = {
            "socket_timeout": 0.5,
            "socket_connect_timeout": 0.5,
            **redis_tls_options(self.REDIS_URL, verify=self.REDIS_TLS_VERIFY),
        }
        self.RATELIMIT_DEFAULT = env.get("RATELIMIT_DEFAULT") or "300 per minute"
        self.RATELIMIT_ACCOUNT = env.get("RATELIMIT_ACCOUNT") or "300 per minute"
        self.RATELIMIT_LOGIN = env.get("RATELIMIT_LOGIN") or "10 per minute;100 per hour"
        self.RATELIMIT_REGISTER = env.get("RATELIMIT_REGISTER") or "5 per minute;50 per hour"
        self.RATELIMIT_REFRESH = env.get("RATELIMIT_REFRESH") or "30 per minute"
        self.RATELIMIT_PASSWORD = env.get("RATELIMIT_PASSWORD") or "5 per minute;30 per hour"
        self.RATELIMIT_EMAIL = env.get("RATELIMIT_EMAIL") or "5 per minute;20 per hour"

        self.LOGIN_FREE_FAILURES_PER_IP = _int(env, "LOGIN_FREE_FAILURES_PER_IP", 5, minimum=1)
        self.LOGIN_FREE_FAILURES_PER_ACCOUNT = _int(
            env, "LOGIN_FREE_FAILURES_PER_ACCOUNT", 20, minimum=1
        )
        self.LOGIN_BACKOFF_CAP_IP = _int(
            env, "LOGIN_BACKOFF_CAP_IP", 900, minimum=1, maximum=MAX_BACKOFF_SECONDS
        )
        self.LOGIN_BACKOFF_CAP_ACCOUNT = _int(
            env, "LOGIN_BACKOFF_CAP_ACCOUNT", 300, minimum=1, maximum=MAX_BACKOFF_SECONDS
        )
        self.PASSWORD_CHECK_BREACHED = env_bool(env, "PASSWORD_CHECK_BREACHED", True)

        self.MAIL_BACKEND = (
            env.get("MAIL_BACKEND") or ("smtp" if self.APP_ENV == "production" else "console")
        ).lower()
        if self.MAIL_BACKEND not in ("console", "smtp"):
            raise ConfigError("MAIL_BACKEND must be console or smtp")
        self.MAIL_SERVER = env.get("MAIL_SERVER") or None
        self.MAIL_PORT = _int(env, "MAIL_PORT", 587, minimum=1, maximum=65_535)
        self.MAIL_USERNAME = env.get("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = env.get("MAIL_PASSWORD") or None
        self.MAIL_USE_TLS = env_bool(env, "MAIL_USE_TLS", True)
        self.MAIL_FROM = env.get("MAIL_FROM") or "Warden <no-reply@localhost>"
        self.MAIL_TIMEOUT = _int(env, "MAIL_TIMEOUT", 10, minimum=1, maximum=3_600)
        self.FRONTEND_URL = (env.get("FRONTEND_URL") or "http://localhost:3000").rstrip("/")
        self.FRONTEND_URL_SET = bool(env.get("FRONTEND_URL"))
        self.REQUIRE_VERIFIED_EMAIL = env_bool(env, "REQUIRE_VERIFIED_EMAIL", False)
        self.REGISTRATION_ENUMERATION_SAFE = env_bool(env, "REGISTRATION_ENUMERATION_SAFE", False)
        self.VERIFY_TOKEN_TTL = _int(
            env, "VERIFY_TOKEN_TTL", 86_400, minimum=60, maximum=MAX_SECONDS
        )
        self.RESET_TOKEN_TTL = _int(env, "RESET_TOKEN_TTL", 3_600, minimum=60, maximum=MAX_SECONDS)
        self.EMAIL_CHANGE_TOKEN_TTL = _int(
            env, "EMAIL_CHANGE_TOKEN_TTL", 86_400, minimum=60, maximum=MAX_SECONDS
        )
        self.AUDIT_RETENTION_DAYS = _int(
            env, "AUDIT_RETENTION_DAYS", 365, minimum=1, maximum=MAX_RETENTION_DAYS
        )
        self.JWT_ENCODE_ISSUER = self.JWT_DECODE_ISSUER = env.get("JWT_ISSUER") or "warden"
        self.JWT_ENCODE_AUDIENCE = self.JWT_DECODE_AUDIENCE = env.get("JWT_AUDIENCE") or "warden"
        self.JWT_DECODE_LEEWAY = 10
        self.JWT_ERROR_MESSAGE_KEY = "detail"

        self.API_TITLE = "Warden"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.1.0"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "docs"
        self.OPENAPI_SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"
        # "Authorize" survives page reloads.
        self.OPENAPI_SWAGGER_UI_CONFIG = {"persistAuthorization": True}
        self.OPENAPI_REDOC_PATH = "redoc"
        self.OPENAPI_REDOC_URL = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"

    def validate(self) -> None:
        """Raise ConfigError when the settings are unsafe for this environment."""
        if self.MAIL_BACKEND == "smtp" and not self.MAIL_SERVER:
            raise ConfigError("MAIL_SERVER is required when MAIL_BACKEND is smtp")
        if self.REDIS_URL and urlsplit(self.REDIS_URL).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        for name in RATELIMIT_SETTINGS:
            try:
                limits = parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(f"{name} is not a valid limit, e.g. '10 per minute'") from None
            if any(limit.amount < 1 for limit in limits):
                # "0 per minute" would refuse every request it covers.
                raise ConfigError(f"{name} must allow at least 1 request per period")


def engine_options(url: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return engine options suited to the database behind ``url``."""
    env = {} if env is None else env
    # Error messages never carry bound parameters (emails, hashes) into logs.
    if not url.startswith("postgresql"):
        return {"hide_parameters": True}
    statement_timeout = _int(
        env, "DB_STATEMENT_TIMEOUT_MS", 10_000, minimum=0, maximum=2_147_483_647
    )
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
    if env_bool(env, "DB_PGBOUNCER", False):
        # PgBouncer in transaction mode keeps no server-side prepared statements, and may
        # refuse startup options: set statement_timeout on the database role instead.
        connect_args["prepare_threshold"] = None
    elif statement_timeout:
        connect_args["options"] = f"-c statement_timeout={statement_timeout}"
    return {
        # A dead pooled connection is found by a look at its socket on checkout
        # (core/db_liveness.py); DB_PRE_PING=true adds a round trip to the server as well.
        "pool_pre_ping": env_bool(env, "DB_PRE_PING", False),
        "pool_timeout": 2,
        "pool_size": _int(env, "DB_POOL_SIZE", 5, minimum=1),
        "max_overflow": _int(env, "DB_MAX_OVERFLOW", 10, minimum=0),
        "hide_parameters": True,
        "connect_args": connect_args,
    }


def redis_tls_options(url: str | None, *, verify: bool) -> dict[str, Any]:
    """Client options for a rediss:// URL whose certificate should not be verified."""
    if url and url.lower().startswith("rediss://") and not verify:
        return {"ssl_cert_reqs": None}
    return {}


class DevelopmentConfig(Config):
    """Local development: SQLite and in-process state by default."""

    APP_ENV = "development"


class TestingConfig(Config):
    """The test suite: cheap hashing, its own database."""

    APP_ENV = "testing"
    TESTING = True

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        super().__init__(env)
        self.SQLALCHEMY_DATABASE_URI = database_url(
            env.get("TEST_DATABASE_URL") or "sqlite:///:memory:", "TEST_DATABASE_URL"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI, env)
        self.REDIS_URL = env.get("TEST_REDIS_URL") or None
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        self.BCRYPT_ROUNDS = 4
        # The suite logs in hundreds of times from one address; limit tests set their own.
        self.RATELIMIT_DEFAULT = "100000 per minute"
        self.RATELIMIT_LOGIN = self.RATELIMIT_REGISTER = self.RATELIMIT_DEFAULT
        self.RATELIMIT_ACCOUNT = self.RATELIMIT_DEFAULT
        self.RATELIMIT_REFRESH = self.RATELIMIT_PASSWORD = self.RATELIMIT_DEFAULT
        self.RATELIMIT_EMAIL = self.RATELIMIT_DEFAULT


class ProductionConfig(Config):
    """Production: secrets are required and must be strong."""

    APP_ENV = "production"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        super().__init__(env)
        self.SECRET_KEY = env.get("SECRET_KEY", "")
        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY", "")

    def validate(self) -> None:
        """Refuse missing, short or placeholder secrets."""
        required = ["SECRET_KEY"] + ([] if self.JWT_SIGNING_KEYS else ["JWT_SECRET_KEY"])
        for name in required:
            value: str = getattr(self, name)
            if not value:
                raise ConfigError(f"{name} is required in production")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes")
            if value == self.DEFAULT_SECRET:
                raise ConfigError(f"{name} must not be the development placeholder")
        if self.MAIL_BACKEND == "console":
            # The console backend logs message bodies, reset links included.
            raise ConfigError("MAIL_BACKEND=console would log reset links; use smtp in production")
        if not self.FRONTEND_URL_SET:
            raise ConfigError("FRONTEND_URL is required in production (mailed links point there)")
        super().validate()


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build and validate the configuration named by APP_ENV (reading .env in development)."""
    if env is None:
        if os.environ.get("APP_ENV", "development") == "development":
            load_dotenv(BASE_DIR / ".env")
        env = os.environ
    name = env.get("APP_ENV") or "development"
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
    config = CONFIGS[name](env)
    config.validate()
    return config
