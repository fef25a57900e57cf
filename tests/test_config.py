"""Configuration from the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from config import (
    DEVELOPMENT_SECRET,
    ConfigError,
    Settings,
    database_url,
    engine_options,
    flask_config,
    load_settings,
)
from project.core.settings import configuration_markdown

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
    config = load_settings({})
    assert config.APP_ENV == "development"
    assert config.DATABASE_URL.startswith("sqlite:///")
    assert config.DATABASE_URL.endswith("/instance/warden.db")
    assert (config.ACCESS_TOKEN_TTL, config.REFRESH_TOKEN_TTL, config.BCRYPT_ROUNDS) == (
        900,
        2_592_000,
        12,
    )
    assert config.PORT == 8000
    assert config.WEB_CONCURRENCY == 1  # on SQLite; 2 on PostgreSQL
    assert load_settings({"DATABASE_URL": "postgres://db/warden"}).WEB_CONCURRENCY == 2
    assert config.REDIS_URL is None
    assert config.CORS_ORIGINS == ()
    assert flask_config(config)["MAX_CONTENT_LENGTH"] == 65536


def test_postgres_connections_are_checked_without_a_ping_unless_asked() -> None:
    postgres = load_settings({"DATABASE_URL": "postgresql://postgres@127.0.0.1/warden"})
    default = engine_options(postgres)
    assert default["pool_pre_ping"] is False
    assert default["connect_args"]["keepalives"] == 1
    assert default["connect_args"]["keepalives_idle"] == 60
    assert default["connect_args"]["tcp_user_timeout"] == 30_000
    assert default["connect_args"]["options"] == "-c statement_timeout=10000"
    assert engine_options(replace(postgres, DB_PRE_PING=True))["pool_pre_ping"] is True
    pgbouncer = engine_options(replace(postgres, DB_PGBOUNCER=True))["connect_args"]
    assert pgbouncer["prepare_threshold"] is None and "options" not in pgbouncer
    assert "pool_pre_ping" not in engine_options(load_settings({}))


def test_values_are_read_typed() -> None:
    config = load_settings(
        {
            "ACCESS_TOKEN_TTL": "60",
            "REFRESH_TOKEN_TTL": "3600",
            "BCRYPT_ROUNDS": "10",
            "CORS_ORIGINS": "https://a.example, https://b.example,",
            "REDIS_URL": "redis://localhost:6379/3",
            "LOG_LEVEL": "debug",
            "PORT": "5000",
            "WEB_CONCURRENCY": "4",
            "HSTS": "Yes",
            "MAIL_BACKEND": "SMTP",
            "MAIL_SERVER": "smtp.example.com",
            "FRONTEND_URL": "https://app.example.com/",
            "TOKEN_CACHE_SIZE": "",  # empty counts as unset
        }
    )
    assert (config.ACCESS_TOKEN_TTL, config.REFRESH_TOKEN_TTL, config.BCRYPT_ROUNDS) == (
        60,
        3600,
        10,
    )
    assert config.CORS_ORIGINS == ("https://a.example", "https://b.example")
    assert config.REDIS_URL == "redis://localhost:6379/3"
    assert (config.LOG_LEVEL, config.PORT, config.WEB_CONCURRENCY) == ("DEBUG", 5000, 4)
    assert config.HSTS is True and config.MAIL_BACKEND == "smtp"
    assert config.FRONTEND_URL == "https://app.example.com"
    assert config.TOKEN_CACHE_SIZE == 4096


def test_every_setting_has_the_type_it_declares() -> None:
    settings = load_settings({})
    for item in fields(Settings):
        expected = {"int": int, "bool": bool, "str": str}.get(str(item.type))
        if expected is not None:
            assert type(getattr(settings, item.name)) is expected, item.name


def test_the_testing_environment_reads_its_own_database_and_redis() -> None:
    settings = load_settings(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": "postgres://prod/warden",
            "REDIS_URL": "redis://prod/0",
            "TEST_DATABASE_URL": "postgres://test/warden",
        }
    )
    assert settings.DATABASE_URL == "postgresql+psycopg://test/warden"
    assert settings.REDIS_URL is None
    assert settings.BCRYPT_ROUNDS == 4 and settings.RATELIMIT_LOGIN == "100000 per minute"
    assert flask_config(settings)["TESTING"] is True
    with pytest.raises(ConfigError, match=r"\n  TEST_DATABASE_URL: is not a database URL$"):
        load_settings({"APP_ENV": "testing", "TEST_DATABASE_URL": "garbage"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_ENV": "staging"}, "APP_ENV:"),
        ({"ACCESS_TOKEN_TTL": "soon"}, "ACCESS_TOKEN_TTL:"),
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS:"),
        ({"BCRYPT_ROUNDS": "32"}, "BCRYPT_ROUNDS: must be between 4 and 31, got 32"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL:"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT:"),
        ({"COOKIE_SAMESITE": "sometimes"}, "COOKIE_SAMESITE:"),
        ({"RATELIMIT_ENABLED": "perhaps"}, "RATELIMIT_ENABLED:"),
        ({"APP_ENV": "production", "JWT_SECRET_KEY": STRONG}, "SECRET_KEY:"),
        ({"APP_ENV": "production", "SECRET_KEY": STRONG}, "JWT_SECRET_KEY:"),
        ({"APP_ENV": "production", "SECRET_KEY": "short", "JWT_SECRET_KEY": STRONG}, "SECRET_KEY:"),
        (
            {"APP_ENV": "production", "SECRET_KEY": STRONG, "JWT_SECRET_KEY": "x" * 31},
            "JWT_SECRET_KEY",
        ),
        ({"RATELIMIT_LOGIN": "lots"}, "RATELIMIT_LOGIN:"),
        (
            {"MFA_ENCRYPTION_KEYS": f"{STRONG},short"},
            "MFA_ENCRYPTION_KEYS: every key must be at least 32 bytes",
        ),
        ({"MFA_ENCRYPTION_KEYS": " , "}, "MFA_ENCRYPTION_KEYS: holds no key"),
        ({"RATELIMIT_DEFAULT": "10 per fortnight"}, "RATELIMIT_DEFAULT:"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL:"),
        ({"MAIL_BACKEND": "smtp"}, "MAIL_SERVER:"),
        ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND:"),
        # Values that once started the app and then failed requests (timedelta, bcrypt, dates).
        (
            {"ACCESS_TOKEN_TTL": "10" + "0" * 20},
            "ACCESS_TOKEN_TTL: must be between 1 and 315360000",
        ),
        ({"AUDIT_RETENTION_DAYS": "1000000"}, "AUDIT_RETENTION_DAYS: must be between 1 and 36500"),
        ({"PORT": "70000"}, "PORT: must be between 0 and 65535"),
        # Credentialed CORS for any origin would let every site read the CSRF values.
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS: must list exact origins"),
        ({"CORS_ORIGINS": "https://app.example.com,*"}, "CORS_ORIGINS: must list exact origins"),
        ({"CORS_ORIGINS": "https://.*\\.example\\.com"}, "CORS_ORIGINS: must list exact"),
        ({"CORS_ORIGINS": "https://app.example.com/"}, "CORS_ORIGINS: must list exact origins"),
        (
            {"COOKIE_SAMESITE": "None", "COOKIE_SECURE": "false"},
            "COOKIE_SAMESITE: None needs COOKIE_SECURE=true",
        ),
        # Refused at start, not on the first connection with a traceback of its own.
        ({"DATABASE_URL": "mysql://u@host/db"}, "DATABASE_URL: must be a PostgreSQL"),
        ({"DATABASE_URL": "garbage"}, "DATABASE_URL: is not a database URL"),
        ({"DATABASE_URL": "postgresql://u@h:x/db"}, "DATABASE_URL: is not a database URL"),
        # A lock outliving the failure counters (one day) would vanish with them.
        ({"LOGIN_BACKOFF_CAP_IP": "86401"}, "LOGIN_BACKOFF_CAP_IP: must be between 1 and 86400"),
        ({"RATELIMIT_DEFAULT": "0 per minute"}, "RATELIMIT_DEFAULT: must allow at least 1"),
        ({"JWT_SIGNING_KEYS": "[]"}, "JWT_SIGNING_KEYS: is not a valid JWK Set"),
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    lines = str(refused.value).splitlines()
    assert lines[0] == "warden: configuration error:"
    assert any(line.startswith(f"  {message}") for line in lines[1:]), lines


def test_every_bad_setting_is_reported_together_one_line_each() -> None:
    env = {
        "APP_ENV": "production",
        "BCRYPT_ROUNDS": "3",
        "PORT": "eighty",
        "CORS_ORIGINS": "*",
        "COOKIE_SAMESITE": "None",
        "COOKIE_SECURE": "false",
        "RATELIMIT_LOGIN": "lots",
        "SECRET_KEY": "short",
    }
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert str(refused.value).splitlines() == [
        "warden: configuration error:",
        "  SECRET_KEY: must be at least 32 bytes",
        "  CORS_ORIGINS: must list exact origins like https://app.example.com, got '*'",
        "  JWT_SECRET_KEY: required in production",
        "  COOKIE_SAMESITE: None needs COOKIE_SECURE=true",
        "  BCRYPT_ROUNDS: must be between 4 and 31, got 3",
        "  RATELIMIT_LOGIN: is not a valid limit, e.g. '10 per minute'",
        "  MAIL_SERVER: required when MAIL_BACKEND is smtp",
        "  FRONTEND_URL: required in production",
        "  MFA_ENCRYPTION_KEYS: required in production",
        "  PORT: must be an integer, got 'eighty'",
    ]
    assert set(refused.value.problems) == {
        line.split(":")[0].strip() for line in str(refused.value).splitlines()[1:]
    }


def test_production_accepts_strong_secrets() -> None:
    config = load_settings(
        {
            "APP_ENV": "production",
            "SECRET_KEY": STRONG,
            "JWT_SECRET_KEY": "j" * 40,
            "MFA_ENCRYPTION_KEYS": "m" * 40,
            "MAIL_SERVER": "smtp.example.com",
            "FRONTEND_URL": "https://app.example.com",
        }
    )
    assert config.JWT_SECRET_KEY == "j" * 40
    assert (config.HSTS, config.COOKIE_SECURE, config.MAIL_BACKEND) == (True, True, "smtp")


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_the_development_placeholder(name: str) -> None:
    """It is 41 bytes long, so the length check alone would let it through."""
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": STRONG,
        "JWT_SECRET_KEY": "j" * 40,
        "MFA_ENCRYPTION_KEYS": "m" * 40,
        "MAIL_SERVER": "smtp.example.com",
        "FRONTEND_URL": "https://app.example.com",
        name: DEVELOPMENT_SECRET,
    }
    with pytest.raises(ConfigError, match=f"\\n  {name}: must not be the development placeholder$"):
        load_settings(env)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = load_settings({"SECRET_KEY": "s3cret" * 8, "MAIL_PASSWORD": "hunter2"})
    assert "s3cret" not in repr(settings) and "hunter2" not in repr(settings)


def production_env(**changes: str) -> dict[str, str]:
    """The process environment with Warden's own settings removed, then ``changes``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in Settings.__dataclass_fields__ and not key.startswith("TEST_")
    }
    return {**env, **changes}


def test_gunicorn_refuses_to_start_naming_every_problem() -> None:
    env = production_env(APP_ENV="production", SECRET_KEY=STRONG, PORT="0")
    assert gunicorn_refusal(env, "wsgi:app") == [
        "warden: configuration error:",
        "  JWT_SECRET_KEY: required in production",
        "  MAIL_SERVER: required when MAIL_BACKEND is smtp",
        "  FRONTEND_URL: required in production",
        "  MFA_ENCRYPTION_KEYS: required in production",
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
    with pytest.raises(ConfigError, match=r"\n  JWT_SIGNING_KEYS_FILE: is not a valid JWK Set"):
        load_settings({"JWT_SIGNING_KEYS_FILE": str(keys)})
    with pytest.raises(ConfigError, match=r"\n  JWT_SIGNING_KEYS_FILE: cannot be read"):
        load_settings({"JWT_SIGNING_KEYS_FILE": str(tmp_path / "missing.json")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GUNICORN_ACCESS_LOG": "maybe"},
            "GUNICORN_ACCESS_LOG: must be true or false, got 'maybe'",
        ),
        ({"PORT": "eighty"}, "PORT: must be an integer, got 'eighty'"),
    ],
)
def test_gunicorn_settings_are_checked_like_the_apps(env: dict[str, str], message: str) -> None:
    lines = gunicorn_refusal(production_env(APP_ENV="development", **env), "--check-config")
    assert lines == ["warden: configuration error:", f"  {message}"]


@pytest.mark.parametrize("command", [["db", "current"], ["worker", "--burst"]])
def test_flask_commands_refuse_bad_config_naming_every_problem(command: list[str]) -> None:
    env = production_env(APP_ENV="production", SECRET_KEY=STRONG, FLASK_SKIP_DOTENV="1")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.splitlines()[-5:] == [
        "warden: configuration error:",
        "  JWT_SECRET_KEY: required in production",
        "  MAIL_SERVER: required when MAIL_BACKEND is smtp",
        "  FRONTEND_URL: required in production",
        "  MFA_ENCRYPTION_KEYS: required in production",
    ]
    assert "Traceback" not in result.stderr


def test_production_refuses_the_console_mail_backend_and_a_missing_frontend() -> None:
    base = {"APP_ENV": "production", "SECRET_KEY": STRONG, "JWT_SECRET_KEY": STRONG}
    with pytest.raises(ConfigError, match="MAIL_BACKEND: console would log reset links"):
        load_settings({**base, "MAIL_BACKEND": "console"})
    with pytest.raises(ConfigError, match="FRONTEND_URL: required in production"):
        load_settings({**base, "MAIL_SERVER": "smtp.example.com"})


def write_dotenv(directory: Path, text: str) -> Path:
    """A .env file holding ``text`` in ``directory``."""
    path = directory / ".env"
    path.write_text(text)
    return path


def test_dotenv_is_read_in_development_under_the_real_environment(tmp_path: Path) -> None:
    path = write_dotenv(tmp_path, "ACCESS_TOKEN_TTL=60\nBCRYPT_ROUNDS=10\n")
    for real in ({}, {"APP_ENV": "development"}):
        settings = load_settings({**real, "BCRYPT_ROUNDS": "11"}, dotenv_path=path)
        assert (settings.ACCESS_TOKEN_TTL, settings.BCRYPT_ROUNDS) == (60, 11)


@pytest.mark.parametrize("app_env", ["testing", "production"])
def test_dotenv_is_ignored_outside_development(tmp_path: Path, app_env: str) -> None:
    path = write_dotenv(tmp_path, "ACCESS_TOKEN_TTL=60\nBCRYPT_ROUNDS=soon\n")
    env = {
        "APP_ENV": app_env,
        "SECRET_KEY": STRONG,
        "JWT_SECRET_KEY": STRONG,
        "MFA_ENCRYPTION_KEYS": STRONG,
        "MAIL_SERVER": "smtp.example.com",
        "FRONTEND_URL": "https://app.example.com",
    }
    assert load_settings(env, dotenv_path=path).ACCESS_TOKEN_TTL == 900


@pytest.mark.parametrize("real", [{}, {"APP_ENV": "development"}, {"APP_ENV": "production"}])
def test_dotenv_cannot_choose_the_environment(tmp_path: Path, real: dict[str, str]) -> None:
    path = write_dotenv(tmp_path, "APP_ENV=production\nPORT=x\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(real, dotenv_path=path)
    assert "  APP_ENV: .env cannot set it; set APP_ENV in the environment" in str(refused.value)


def test_gunicorn_refuses_a_dotenv_that_sets_the_environment(tmp_path: Path) -> None:
    """The .env next to config.py: the process environment alone decides APP_ENV."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("config.py", "gunicorn.conf.py"):
        shutil.copy(ROOT / name, root / name)
    write_dotenv(root, "APP_ENV=production\n")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--check-config"],
        cwd=root,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "  APP_ENV: .env cannot set it; set APP_ENV in the environment" in result.stderr


def test_the_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_markdown(), (
        "run: make docs"
    )
    for item in fields(Settings):
        assert f"| `{item.name}` |" in configuration_markdown()
