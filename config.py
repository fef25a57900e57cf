"""Configuration read from the environment (12-factor), one class per APP_ENV."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
MIN_SECRET_BYTES = 32
ENVIRONMENTS = ("development", "testing", "production")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


def database_url(raw: str | None) -> str:
    """Return a SQLAlchemy URL for psycopg 3, accepting Heroku's postgres:// form."""
    if not raw:
        return f"sqlite:///{BASE_DIR / 'instance' / 'warden.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _list(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


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
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.REDIS_URL = env.get("REDIS_URL") or None
        self.ACCESS_TOKEN_TTL = _int(env, "ACCESS_TOKEN_TTL", 900, minimum=1)
        self.REFRESH_TOKEN_TTL = _int(env, "REFRESH_TOKEN_TTL", 2_592_000, minimum=1)
        self.BCRYPT_ROUNDS = _int(env, "BCRYPT_ROUNDS", 12, minimum=4)
        if self.BCRYPT_ROUNDS > 31:
            raise ConfigError(f"BCRYPT_ROUNDS must be at most 31, got {self.BCRYPT_ROUNDS}")
        self.CORS_ORIGINS = _list(env.get("CORS_ORIGINS"))
        self.LOG_LEVEL = (env.get("LOG_LEVEL") or "INFO").upper()
        self.LOG_FORMAT = env.get("LOG_FORMAT") or "json"
        self.PORT = _int(env, "PORT", 8000)
        self.WEB_CONCURRENCY = _int(env, "WEB_CONCURRENCY", 2, minimum=1)

        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.MAX_CONTENT_LENGTH = 64 * 1024
        self.JWT_TOKEN_LOCATION = ["headers"]
        self.JWT_ALGORITHM = "HS256"
        self.JWT_DECODE_ALGORITHMS = ["HS256"]
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

    def validate(self) -> None:
        """Raise ConfigError when the settings are unsafe for this environment."""


def engine_options(url: str) -> dict[str, Any]:
    """Return engine options suited to the database behind ``url``."""
    if url.startswith("postgresql"):
        # Fail fast instead of hanging when the database is unreachable.
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 2}}
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
            env.get("TEST_DATABASE_URL") or "sqlite:///:memory:"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.REDIS_URL = env.get("TEST_REDIS_URL") or None
        self.BCRYPT_ROUNDS = 4


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
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value: str = getattr(self, name)
            if not value:
                raise ConfigError(f"{name} is required in production")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise ConfigError(f"{name} must be at least {MIN_SECRET_BYTES} bytes")
            if value == self.DEFAULT_SECRET:
                raise ConfigError(f"{name} must not be the development placeholder")


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
