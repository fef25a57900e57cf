"""Configuration from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import Config, ConfigError, database_url, engine_options, load_config

ROOT = Path(__file__).resolve().parent.parent
STRONG = "s" * 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@host:5432/db", "postgresql+psycopg://u:p@host:5432/db"),
        ("postgresql://u@host/db", "postgresql+psycopg://u@host/db"),
        ("postgresql+psycopg://u@host/db", "postgresql+psycopg://u@host/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+pysqlite:///x.db"),
        ("POSTGRES://u@host/db", "postgresql+psycopg://u@host/db"),
        (
            "postgresql+psycopg2://u@host/db?sslmode=require",
            "postgresql+psycopg://u@host/db?sslmode=require",
        ),
    ],
)
def test_database_url_accepts_heroku_style(raw: str, expected: str) -> None:
    assert database_url(raw) == expected


def test_defaults() -> None:
    config = load_config({})
    assert config.APP_ENV == "development"
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert config.SQLALCHEMY_DATABASE_URI.endswith("/instance/warden.db")
    assert (config.ACCESS_TOKEN_TTL, config.REFRESH_TOKEN_TTL, config.BCRYPT_ROUNDS) == (
        900,
        2_592_000,
        12,
    )
    assert config.PORT == 8000
    assert config.WEB_CONCURRENCY == 1  # on SQLite; 2 on PostgreSQL
    assert load_config({"DATABASE_URL": "postgres://db/warden"}).WEB_CONCURRENCY == 2
    assert config.REDIS_URL is None
    assert config.CORS_ORIGINS == []
    assert config.MAX_CONTENT_LENGTH == 65536


def test_postgres_connections_are_checked_without_a_ping_unless_asked() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1/warden"
    default = engine_options(url, {})
    assert default["pool_pre_ping"] is False
    assert default["connect_args"]["keepalives"] == 1
    assert default["connect_args"]["keepalives_idle"] == 60
    assert default["connect_args"]["tcp_user_timeout"] == 30_000
    assert engine_options(url, {"DB_PRE_PING": "true"})["pool_pre_ping"] is True
    assert "pool_pre_ping" not in engine_options("sqlite:///warden.db", {})


def test_values_are_read() -> None:
    config = load_config(
        {
            "ACCESS_TOKEN_TTL": "60",
            "REFRESH_TOKEN_TTL": "3600",
            "BCRYPT_ROUNDS": "10",
            "CORS_ORIGINS": "https://a.example, https://b.example,",
            "REDIS_URL": "redis://localhost:6379/3",
            "LOG_LEVEL": "debug",
            "PORT": "5000",
            "WEB_CONCURRENCY": "4",
        }
    )
    assert (config.ACCESS_TOKEN_TTL, config.REFRESH_TOKEN_TTL, config.BCRYPT_ROUNDS) == (
        60,
        3600,
        10,
    )
    assert config.CORS_ORIGINS == ["https://a.example", "https://b.example"]
    assert config.REDIS_URL == "redis://localhost:6379/3"
    assert (config.LOG_LEVEL, config.PORT, config.WEB_CONCURRENCY) == ("DEBUG", 5000, 4)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"ACCESS_TOKEN_TTL": "soon"}, "ACCESS_TOKEN_TTL"),
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS"),
        ({"BCRYPT_ROUNDS": "32"}, "BCRYPT_ROUNDS must be at most 31"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"COOKIE_SAMESITE": "sometimes"}, "COOKIE_SAMESITE"),
        ({"RATELIMIT_ENABLED": "perhaps"}, "RATELIMIT_ENABLED"),
        ({"APP_ENV": "production", "JWT_SECRET_KEY": STRONG}, "SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": STRONG}, "JWT_SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": "short", "JWT_SECRET_KEY": STRONG}, "SECRET_KEY"),
        (
            {"APP_ENV": "production", "SECRET_KEY": STRONG, "JWT_SECRET_KEY": "x" * 31},
            "JWT_SECRET_KEY",
        ),
        ({"RATELIMIT_LOGIN": "lots"}, "RATELIMIT_LOGIN"),
        ({"RATELIMIT_DEFAULT": "10 per fortnight"}, "RATELIMIT_DEFAULT"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"MAIL_BACKEND": "smtp"}, "MAIL_SERVER"),
        ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND"),
        # Values that once started the app and then failed requests (timedelta, bcrypt, dates).
        ({"ACCESS_TOKEN_TTL": "10" + "0" * 20}, "ACCESS_TOKEN_TTL must be at most"),
        ({"AUDIT_RETENTION_DAYS": "1000000"}, "AUDIT_RETENTION_DAYS must be at most 36500"),
        ({"PORT": "70000"}, "PORT must be at most 65535"),
        # Credentialed CORS for any origin would let every site read the CSRF values.
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS must list exact origins"),
        ({"CORS_ORIGINS": "https://app.example.com,*"}, "CORS_ORIGINS must list exact origins"),
        ({"CORS_ORIGINS": "https://.*\\.example\\.com"}, "CORS_ORIGINS must list exact"),
        ({"CORS_ORIGINS": "https://app.example.com/"}, "CORS_ORIGINS must list exact origins"),
        ({"COOKIE_SAMESITE": "None", "COOKIE_SECURE": "false"}, "COOKIE_SAMESITE=None needs"),
        # Refused at start, not on the first connection with a traceback of its own.
        ({"DATABASE_URL": "mysql://u@host/db"}, "DATABASE_URL must be a PostgreSQL"),
        ({"DATABASE_URL": "garbage"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": "postgresql://u@h:x/db"}, "DATABASE_URL is not a database URL"),
        # A lock outliving the failure counters (one day) would vanish with them.
        ({"LOGIN_BACKOFF_CAP_IP": "86401"}, "LOGIN_BACKOFF_CAP_IP must be at most 86400"),
        ({"RATELIMIT_DEFAULT": "0 per minute"}, "RATELIMIT_DEFAULT must allow at least 1"),
        ({"JWT_SIGNING_KEYS": "[]"}, "JWT_SIGNING_KEYS is not a valid JWK Set"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{message}"):
        load_config(env)


def test_production_accepts_strong_secrets() -> None:
    config = load_config(
        {
            "APP_ENV": "production",
            "SECRET_KEY": STRONG,
            "JWT_SECRET_KEY": "j" * 40,
            "MAIL_SERVER": "smtp.example.com",
            "FRONTEND_URL": "https://app.example.com",
        }
    )
    assert config.JWT_SECRET_KEY == "j" * 40


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_the_development_placeholder(name: str) -> None:
    """It is 41 bytes long, so the length check alone would let it through."""
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": STRONG,
        "JWT_SECRET_KEY": "j" * 40,
        "MAIL_SERVER": "smtp.example.com",
        "FRONTEND_URL": "https://app.example.com",
        name: Config.DEFAULT_SECRET,
    }
    with pytest.raises(ConfigError, match=f"^{name} must not be the development placeholder"):
        load_config(env)


def test_gunicorn_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL")
    }
    env.update(APP_ENV="production", SECRET_KEY=STRONG, PORT="0")
    assert gunicorn_refusal(env, "wsgi:app") == [
        "warden: configuration error: JWT_SECRET_KEY is required in production"
    ]


def gunicorn_refusal(env: dict[str, str], *args: str) -> list[str]:
    """Start gunicorn with Warden's config in ``env``; it must fail: its stderr lines."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_signing_key_file_is_named_in_its_error(tmp_path: Path) -> None:
    keys = tmp_path / "jwks.json"
    keys.write_text("not json")
    with pytest.raises(ConfigError, match=r"^JWT_SIGNING_KEYS_FILE is not a valid JWK Set"):
        load_config({"JWT_SIGNING_KEYS_FILE": str(keys)})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GUNICORN_ACCESS_LOG": "maybe"}, "GUNICORN_ACCESS_LOG must be true or false"),
        ({"PORT": "eighty"}, "PORT must be an integer"),
    ],
)
def test_gunicorn_settings_are_checked_like_the_apps(env: dict[str, str], message: str) -> None:
    lines = gunicorn_refusal({**os.environ, "APP_ENV": "development", **env}, "--check-config")
    assert lines == [f"warden: configuration error: {message}, got {env[next(iter(env))]!r}"]


def test_flask_commands_refuse_bad_config_in_one_line() -> None:
    env = {key: value for key, value in os.environ.items() if not key.endswith("SECRET_KEY")}
    env.update(APP_ENV="production", SECRET_KEY=STRONG)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "db", "current"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "warden: configuration error: JWT_SECRET_KEY is required in production" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_the_console_mail_backend_and_a_missing_frontend() -> None:
    base = {"APP_ENV": "production", "SECRET_KEY": STRONG, "JWT_SECRET_KEY": STRONG}
    with pytest.raises(ConfigError, match="MAIL_BACKEND=console"):
        load_config({**base, "MAIL_BACKEND": "console"})
    with pytest.raises(ConfigError, match="FRONTEND_URL"):
        load_config({**base, "MAIL_SERVER": "smtp.example.com"})
