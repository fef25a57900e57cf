"""A production-like Warden on this machine for the contract runs (make fuzz, make postman).

A fresh PostgreSQL database, a flushed Redis database, a local SMTP sink, the release
phase, an admin account, and the Procfile's web and worker processes; all undone on exit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from redis import Redis

from config import RATELIMIT_SETTINGS
from tests.live import BIN, ROOT, Deployment, production_env
from tests.mailbox import Mailbox, start_smtp_server

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Stack:
    """A running deployment and how to reach it."""

    deployment: Deployment
    mailbox: Mailbox
    admin_email: str
    admin_password: str
    keep_logs: bool = False

    def failed(self) -> None:
        """Print the end of the server logs and keep them on disk."""
        print(self.deployment.logs()[-8000:], file=sys.stderr)
        print(f"server logs kept in {self.deployment.folder}", file=sys.stderr)
        self.keep_logs = True


def lifted_rate_limits(limit: str) -> dict[str, str]:
    """Every RATELIMIT_* setting at ``limit``: contract runs send far more than people do."""
    return dict.fromkeys(RATELIMIT_SETTINGS, limit)


def _libpq_url(raw: str) -> str:
    parts = urlsplit(raw)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"TEST_DATABASE_URL must be a PostgreSQL URL, got {raw!r}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin_sql(server_url: str, statement: sql.Composable) -> None:
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(statement)


def _flask(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    result = subprocess.run(
        [str(BIN / "flask"), *args],
        cwd=ROOT,
        env=env,
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise SystemExit(f"flask {' '.join(args)} failed:\n{output}")


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (a cancelled CI job) into SystemExit, so the cleanup still runs."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


@contextmanager
def production_stack(
    label: str, *, redis_db: int, admin_email: str, overrides: dict[str, str]
) -> Iterator[Stack]:
    """Run release, web and worker in production mode; undo everything on exit."""
    _stop_on_sigterm()
    started = time.monotonic()
    server_url = _libpq_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL)
    name = f"warden_{label}_{uuid.uuid4().hex[:10]}"
    redis_url = os.environ.get("TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{redis_db}"
    admin_password = secrets.token_urlsafe(24)
    folder = Path(tempfile.mkdtemp(prefix=f"warden-{label}-"))
    stack: Stack | None = None
    with ExitStack() as cleanup:
        cleanup.callback(lambda: print(f"{label}: done in {time.monotonic() - started:.1f} s"))
        redis = Redis.from_url(redis_url)
        cleanup.callback(redis.close)
        redis.flushdb()
        cleanup.callback(redis.flushdb)
        _admin_sql(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        cleanup.callback(
            _admin_sql,
            server_url,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
        )
        controller, mailbox = start_smtp_server()
        cleanup.callback(controller.stop)
        # A failed run keeps the server logs for a look.
        cleanup.callback(
            lambda: (stack and stack.keep_logs) or shutil.rmtree(folder, ignore_errors=True)
        )
        env = production_env(
            _with_database(server_url, name),
            SECRET_KEY=secrets.token_hex(20),
            JWT_SECRET_KEY=secrets.token_hex(20),
            REDIS_URL=redis_url,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(controller.port),
            MAIL_USE_TLS="false",
            FRONTEND_URL="http://localhost:3000",
            **overrides,
        )
        _flask(env, "db", "upgrade")
        deployment = Deployment(env=env, folder=folder)
        cleanup.callback(
            shutil.rmtree,
            Path(tempfile.gettempdir()) / f"warden-prometheus-{deployment.port}",
            ignore_errors=True,
        )
        cleanup.callback(deployment.stop_all)
        deployment.start("web")
        deployment.start("worker")
        _flask(env, "users", "create-admin", admin_email, "--password-stdin", stdin=admin_password)
        deployment.wait_ready()
        print(f"{label}: Warden is ready at {deployment.base}; logs in {folder}", flush=True)
        stack = Stack(deployment, mailbox, admin_email, admin_password)
        yield stack
