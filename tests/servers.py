"""A PostgreSQL cluster and a redis-server of the tests' own, to stop and start on demand.

The fault tests must never touch the shared servers on 5432 and 6379: each server here
lives in a temporary folder, listens on a free loopback port and is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from redis import Redis
from redis.exceptions import RedisError

from tests.mailbox import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
# Signals a postmaster understands (as pg_ctl stop -m <mode> sends them).
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def missing_tools() -> str | None:
    """Why the servers cannot run here, or None when initdb, postgres and redis-server exist."""
    for tool in ("initdb", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"no {PG_BIN / tool} (set PG_BIN to PostgreSQL's bin folder)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root without a {PG_USER} OS user for initdb"
    return None


def _owner() -> dict[str, Any]:
    """Popen arguments that run a command as the postgres OS user when we are root."""
    if os.geteuid() == 0:
        return {"user": PG_USER, "group": PG_USER, "extra_groups": []}
    return {}


def child_pids(pid: int) -> list[int]:
    """The pids of the live (not zombie) direct children of ``pid``, read from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        state, parent = stat.rpartition(")")[2].split()[:2]
        if int(parent) == pid and state != "Z":
            children.append(int(entry.name))
    return sorted(children)


def stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send ``sig`` if it still runs, reap it, and kill it if it takes over ``timeout``."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> float:
    """Poll ``condition()`` until true; return the seconds it took or raise AssertionError."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class PostgresServer:
    """A throwaway PostgreSQL cluster: trust auth, loopback only, its own port and socket.

    The postmaster is this process's child, so every stop and crash is reaped here (the
    machine's init may not reap orphans). ``stop("immediate")`` is a crash as far as the
    data goes: no checkpoint, WAL replay at the next start.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="warden-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            shutil.chown(self.folder, PG_USER, PG_USER)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy/libpq URL of ``database`` on this server."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (initdb) and configure it for fast, local, disposable use."""
        result = subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **_owner(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.folder}'",
            # fsync=off survives the process crashes these tests cause (the OS keeps the
            # page cache); it would not survive a power cut, which nothing here simulates.
            "fsync": "off",
            "shared_buffers": "32MB",
            "max_connections": "100",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self, timeout: float = 30) -> float:
        """Start the postmaster and wait until it accepts connections; return the seconds."""
        assert not self.running(), "PostgreSQL is already running"
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.data)],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **_owner(),
            )
        try:
            wait_until(self.accepts_connections, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"PostgreSQL did not start:\n{self.logs()}") from None
        return time.monotonic() - started

    def accepts_connections(self) -> bool:
        """Whether a new connection succeeds now."""
        assert self.process is not None and self.process.poll() is None, self.logs()
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, mode: str = "fast", timeout: float = 30) -> float:
        """Shut down like ``pg_ctl stop -m mode`` and reap the postmaster; return the seconds."""
        started = time.monotonic()
        if self.process is not None:
            stop_process(self.process, STOP_SIGNALS[mode], timeout)
            self.process = None
        return time.monotonic() - started

    def backend_pids(self) -> list[int]:
        """The pids of the postmaster's children (backends and auxiliary processes)."""
        return [] if self.process is None else child_pids(self.process.pid)

    def kill_backend(self, pid: int) -> None:
        """SIGKILL one backend, as the OOM killer would: the postmaster resets every backend."""
        assert pid in self.backend_pids(), pid
        os.kill(pid, signal.SIGKILL)

    def ensure_running(self) -> None:
        """Start the server if a test left it stopped."""
        if not self.running():
            self.process = None
            self.start()

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        """A new autocommit connection to ``database``."""
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        with self.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def logs(self) -> str:
        """The server's log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cleanup(self) -> None:
        """Stop the server at once and delete its folder."""
        try:
            self.stop("immediate", timeout=10)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """A throwaway redis-server: no persistence, loopback only, its own port."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="warden-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """The Redis URL of database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> Redis:
        """A client of database 0 with short timeouts."""
        return Redis.from_url(self.url(), socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> bool:
        """Whether the server answers PING."""
        client = self.client()
        try:
            return bool(client.ping())
        except RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 10) -> float:
        """Start the server on its port (empty) and wait for PING; return the seconds taken."""
        assert not self.running(), "redis-server is already running"
        started = time.monotonic()
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.ping, timeout=timeout)
        return time.monotonic() - started

    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Stop the server (SIGTERM: shut down without saving; SIGKILL: crash)."""
        if self.process is None:
            return
        stop_process(self.process, sig, timeout)
        self.process = None

    def ensure_running(self) -> None:
        """Start the server if a test left it stopped, and empty it."""
        if not self.running():
            self.start()
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def cleanup(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.stop(signal.SIGKILL)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL of our own, removed on exit whatever happened."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server of our own, removed on exit whatever happened."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
