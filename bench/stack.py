"""A production-like Warden deployment for the benchmark, and the floor app beside it.

Everything here is created and destroyed by the harness: a fresh PostgreSQL database per
Warden, a Redis database number of its own (flushed before and after), a local SMTP sink,
gunicorn started from the Procfile web line with APP_ENV=production.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import Redis
from sqlalchemy import Engine, create_engine, insert, make_url, text

from config import RATELIMIT_SETTINGS, database_url, load_settings
from tests.live import BIN, call, production_env
from tests.mailbox import Mailbox, free_port, start_smtp_server

HARNESS_ROOT = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "bench-admin@bench.example"
ADMIN_PASSWORD = "bench admin passphrase 7411"
SEED_PASSWORD = "seeded bench passphrase 2026"
# Limits stay on (each request still pays the Redis counter) but can never be reached.
HIGH_LIMIT = "100000000 per minute"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why."""


def admin_database_url() -> str:
    """The PostgreSQL server the harness creates its databases on."""
    return (
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or DEFAULT_ADMIN_URL
    )


def redis_url(offset: int = 0) -> str:
    """The Redis database of the benchmark (BENCH_REDIS_URL, db 9), or ``offset`` below it."""
    base = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    if offset == 0:
        return base
    parts = urlsplit(base)
    number = int(parts.path.strip("/") or 0) - offset
    if number < 0:
        raise BenchError("BENCH_REDIS_URL leaves no database number below it for a variant")
    return urlunsplit(parts._replace(path=f"/{number}"))


def require_wrk() -> str:
    """The wrk binary, or a clear error."""
    found = shutil.which("wrk")
    if not found:
        raise BenchError(
            "wrk is not installed. Install it with `apt-get install wrk` (Debian/Ubuntu) "
            "or `brew install wrk` (macOS), then run the benchmark again."
        )
    return found


def check_services() -> None:
    """Fail early, in one line, when PostgreSQL or Redis cannot be reached."""
    engine = create_engine(database_url(admin_database_url()), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise BenchError(f"PostgreSQL at {admin_database_url()} is not reachable: {exc}") from None
    finally:
        engine.dispose()
    try:
        Redis.from_url(redis_url(), socket_connect_timeout=3).ping()
    except Exception as exc:
        raise BenchError(f"Redis at {redis_url()} is not reachable: {exc}") from None


class Database:
    """One fresh PostgreSQL database, dropped at the end."""

    def __init__(self, label: str) -> None:
        self.server = make_url(database_url(admin_database_url()))
        self.name = f"warden_bench_{label}_{uuid.uuid4().hex[:8]}"
        self._admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = self.server.set(database=self.name).render_as_string(hide_password=False)
        self.engine: Engine = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value."""
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Every row."""
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def execute(self, sql: str) -> None:
        """Run a statement outside a transaction (VACUUM, ANALYZE)."""
        with self.engine.connect() as connection:
            connection.execute(text(sql))

    def drop(self) -> None:
        """Drop the database."""
        self.engine.dispose()
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


def procfile(root: Path, process: str) -> list[str]:
    """The command of one Procfile process of the checkout at ``root``."""
    for line in (root / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command.strip())
    raise BenchError(f"no {process} line in {root / 'Procfile'}")


@dataclass
class Server:
    """One gunicorn (master and workers) with its output in a file."""

    name: str
    root: Path
    env: dict[str, str]
    command: list[str]
    folder: Path
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """Its URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Where its output goes."""
        return self.folder / f"{self.name}.log"

    def start(self) -> None:
        """Start it with PORT set."""
        env = {**self.env, "PORT": str(self.port)}
        with self.log.open("wb") as sink:
            self.popen = subprocess.Popen(  # noqa: S603 - our own gunicorn command
                self.command, cwd=self.root, env=env, stdout=sink, stderr=subprocess.STDOUT
            )

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        """Wait until ``path`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                break
            try:
                if call(self.base, "GET", path, timeout=3)[0] == 200:
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise BenchError(f"{self.name} did not become ready at {self.base}{path}:\n{tail}")

    def alive(self) -> bool:
        """Whether the gunicorn master still runs."""
        return self.popen is not None and self.popen.poll() is None

    def revive(self, error: Exception, ready_path: str, say: Callable[[str], None]) -> None:
        """Re-raise ``error`` if the server still runs; else say why it died, start it again."""
        if self.alive():
            raise error
        code = self.popen.returncode if self.popen else None
        tail = self.log.read_text(errors="replace")[-2000:]
        self.log.rename(self.log.with_suffix(f".{int(time.time())}.log"))
        self.start()
        self.wait_ready(ready_path)
        say(f"  {self.name} had exited (code {code}); restarted. Its last lines:\n{tail}")

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        assert self.popen is not None
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def bench_env(
    *,
    database: str,
    redis: str,
    smtp_port: int,
    bcrypt_rounds: int,
    workers: int,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a production deploy on this machine, limits lifted."""
    env = production_env(
        database,
        REDIS_URL=redis,
        BCRYPT_ROUNDS=str(bcrypt_rounds),
        WEB_CONCURRENCY=str(workers),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        MAIL_USE_TLS="false",
        FRONTEND_URL="https://app.bench.example",
        SECRET_KEY="bench-secret-" + "s" * 40,
        JWT_SECRET_KEY="bench-jwt-secret-" + "j" * 40,
        **dict.fromkeys(RATELIMIT_SETTINGS, HIGH_LIMIT),
        LOGIN_FREE_FAILURES_PER_IP="100000000",
        LOGIN_FREE_FAILURES_PER_ACCOUNT="100000000",
        # The hashing budget is a limit too: every connection's login is hashed, not refused.
        HASHING_SLOTS="64",
        **(extra or {}),
    )
    # A deploy that sets none of these: the harness controls the whole environment.
    for name in (
        "METRICS_TOKEN",
        "TEST_DATABASE_URL",
        "TEST_REDIS_URL",
        "JWT_SIGNING_KEYS",
        "JWT_SIGNING_KEYS_FILE",
        "REFRESH_REUSE_INTERVAL",
        "GUNICORN_ACCESS_LOG",
        "TRUSTED_PROXIES",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "FLASK_APP",
        "FLASK_DEBUG",
    ):
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_flask(root: Path, env: dict[str, str], args: Sequence[str], stdin: str = "") -> str:
    """Run a ``flask`` command in ``root``; return its output or raise BenchError."""
    result = subprocess.run(  # noqa: S603 - our own flask command
        [str(BIN / "flask"), *args],
        cwd=root,
        env=env,
        input=stdin.encode(),
        capture_output=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")[-3000:]
        raise BenchError(f"flask {' '.join(args)} failed:\n{output}")
    return result.stdout.decode(errors="replace")


@dataclass
class Warden:
    """One Warden deployment: database, Redis db, gunicorn, and an in-process app."""

    label: str
    root: Path
    database: Database
    redis: str
    env: dict[str, str]
    server: Server
    seed_output: str = ""
    _app: Any = None

    def release_and_seed(self, users: int, prefix: str) -> float:
        """Migrate, create the admin, seed users; return the seed's wall time (s)."""
        run_flask(self.root, self.env, procfile(self.root, "release")[1:])
        run_flask(
            self.root,
            self.env,
            ["users", "create-admin", ADMIN_EMAIL, "--password-stdin"],
            stdin=ADMIN_PASSWORD + "\n",
        )
        command = ["seed-users", str(users), "--password", SEED_PASSWORD, "--prefix", prefix]
        # The command refuses APP_ENV=production unless told this database is a throwaway.
        if "--force" in run_flask(self.root, self.env, ["seed-users", "--help"]):
            command.append("--force")
        started = time.perf_counter()
        self.seed_output = run_flask(self.root, self.env, command).strip()
        return time.perf_counter() - started

    @property
    def app(self) -> Any:
        """The project's app in this process, on the same database, Redis and secrets."""
        if self._app is None:
            from project import create_app

            self._app = create_app(load_settings({**self.env, "LOG_LEVEL": "WARNING"}))
        return self._app

    def mint_sessions(self, user_ids: Sequence[uuid.UUID], count: int) -> list[Any]:
        """Open ``count`` sessions as login does, minus the bcrypt check; return the pairs.

        The rows are the ones login inserts (project.services.auth._open_session) and the
        tokens are signed by the project's own issue_token_pair, so the refresh endpoint
        does real rotations on them. Inserted in bulk so a pool of tens of thousands takes
        seconds, not the hours tens of thousands of bcrypt logins would.
        """
        from project.core.settings import current_settings
        from project.core.tokens import issue_token_pair, new_token_id
        from project.extensions import db
        from project.models import Session
        from project.models.types import utcnow

        pairs = []
        rows = []
        with self.app.app_context():
            settings = current_settings(self.app)
            now = utcnow()
            expires = now + timedelta(seconds=settings.REFRESH_TOKEN_TTL)
            for index in range(count):
                user_id = user_ids[index % len(user_ids)]
                session_id = uuid.uuid4()
                jti = new_token_id()
                rows.append(
                    {
                        "id": session_id,
                        "user_id": user_id,
                        "refresh_jti": jti,
                        "created_at": now,
                        "last_used_at": now,
                        "expires_at": expires,
                        "ip": "127.0.0.1",
                        "user_agent": "warden-bench",
                    }
                )
                pairs.append(
                    issue_token_pair(
                        user_id=user_id,
                        session_id=session_id,
                        refresh_jti=jti,
                        token_version=0,
                        access_ttl=settings.ACCESS_TOKEN_TTL,
                        refresh_ttl=settings.REFRESH_TOKEN_TTL,
                    )
                )
            for start in range(0, len(rows), 5000):
                db.session.execute(insert(Session), rows[start : start + 5000])
            db.session.commit()
            db.session.remove()
        return pairs

    def login(self, email: str, password: str) -> dict[str, Any]:
        """Log in over HTTP; return the token pair."""
        status, body = call(
            self.server.base,
            "POST",
            "/api/v1/auth/login",
            {"email": email, "password": password},
            timeout=60,
        )
        if status != 200:
            raise BenchError(f"login of {email} failed: {status} {body}")
        return dict(body)

    def active_seeded(self, prefix: str, limit: int, *, spread: bool = False) -> list[Any]:
        """(id, email) of active seeded users: the first ``limit``, or a random sample."""
        order = "random()" if spread else "created_at, id"
        return self.database.rows(
            f"SELECT id, email FROM users WHERE email_normalized LIKE :pattern "  # noqa: S608
            f"AND email_normalized <> :admin AND is_active ORDER BY {order} LIMIT :limit",
            pattern=f"{prefix}%",
            admin=ADMIN_EMAIL,
            limit=limit,
        )

    def stop(self) -> None:
        """Stop gunicorn, forget the in-process app, drop the database, flush Redis."""
        self.server.stop()
        if self._app is not None:
            from project.extensions import db

            with self._app.app_context():
                db.engine.dispose()
            self._app = None
        flush(self.redis)
        self.database.drop()


def flush(url: str) -> None:
    """Empty one Redis database."""
    Redis.from_url(url).flushdb()


@dataclass
class Sink:
    """The SMTP sink and a scratch folder for logs and token files."""

    controller: Any
    mailbox: Mailbox
    folder: Path

    @property
    def port(self) -> int:
        """The SMTP port."""
        return int(self.controller.port)


@contextmanager
def sink(keep_logs: bool = False) -> Iterator[Sink]:
    """Start the SMTP sink and make a scratch folder; stop and remove them afterwards."""
    controller, mailbox = start_smtp_server()
    folder = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    failed = True
    try:
        yield Sink(controller, mailbox, folder)
        failed = False
    finally:
        controller.stop()
        if keep_logs or failed:
            print(f"bench: logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def start_warden(
    *,
    label: str,
    root: Path,
    box: Sink,
    redis_offset: int,
    bcrypt_rounds: int,
    workers: int,
    extra_env: dict[str, str] | None = None,
) -> Warden:
    """Create the database, flush Redis and build the deployment (not started yet)."""
    database = Database(label)
    redis = redis_url(redis_offset)
    flush(redis)
    env = bench_env(
        database=database.url,
        redis=redis,
        smtp_port=box.port,
        bcrypt_rounds=bcrypt_rounds,
        workers=workers,
        extra=extra_env,
    )
    server = Server(f"warden-{label}", root, env, procfile(root, "web"), box.folder)
    return Warden(label, root, database, redis, env, server)


def worker_model(env: dict[str, str]) -> dict[str, str | int]:
    """The gunicorn worker class and threads that gunicorn.conf.py picks for ``env``."""
    threads = load_settings(env).WEB_THREADS
    return {"worker_class": "gthread" if threads > 1 else "sync", "threads_per_worker": threads}


def start_floor(*, env: dict[str, str], box: Sink, body_file: Path) -> Server:
    """Start the floor app under Warden's gunicorn.conf.py (same workers and threads)."""
    floor_env = {**env, "BENCH_FLOOR_BODY": str(body_file)}
    command = [
        str(BIN / "gunicorn"),
        "--config",
        str(HARNESS_ROOT / "gunicorn.conf.py"),
        "bench.floor_app:app",
    ]
    server = Server("floor", HARNESS_ROOT, floor_env, command, box.folder)
    server.start()
    server.wait_ready("/")
    return server


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    """Write one item per line."""
    path.write_text("\n".join(lines) + "\n")
    return path


def pid_alive(pid: int) -> bool:
    """Whether a process exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def run_child(script: str, checkout: str, *args: str) -> Any:
    """Run ``script --child CHECKOUT ARGS...`` in ``checkout``; its last line of output as JSON.

    Each checkout is measured in a process of its own, so its own ``project`` is imported.
    """
    completed = subprocess.run(  # noqa: S603 - a harness script, for another checkout
        [sys.executable, script, "--child", str(Path(checkout).resolve()), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=checkout,
    )
    if completed.returncode != 0:
        raise BenchError(f"{Path(script).name} failed in {checkout}:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def write_result(name: str, document: dict[str, Any]) -> Path:
    """Write ``document`` to bench/results/NAME.json and return the path."""
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    return out
