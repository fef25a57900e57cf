"""Run Warden's Procfile processes for real, on free ports, and talk to them over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from tests.mailbox import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def procfile(process: str) -> list[str]:
    """The command of one Procfile process."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command.strip())
    raise AssertionError(f"no {process} line in the Procfile")


def production_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a production deploy on this machine."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "APP_ENV": "production",
        "SECRET_KEY": "k" * 40,
        "JWT_SECRET_KEY": "j" * 40,
        "MFA_ENCRYPTION_KEYS": "m" * 40,
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": "4",
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        # The suite's concurrent logins test other things than the hashing budget, which
        # tests/test_flood.py and tests/test_hashing_slots.py set for themselves.
        "HASHING_SLOTS": "64",
    }
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(overrides)
    return env


def json_request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[urllib.request.Request, bytes | None]:
    """A request with an optional JSON body and Bearer token, and the bytes to send."""
    request = urllib.request.Request(base + path, method=method)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    return request, data


def decode_body(raw: bytes, content_type: str) -> Any:
    """A response body: parsed JSON when it says so, else text."""
    return json.loads(raw) if raw and "json" in content_type else raw.decode(errors="replace")


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int, Any]:
    """Send one JSON request; return the status and the decoded body."""
    request, data = json_request(base, method, path, body, token, headers)
    try:
        with urllib.request.urlopen(request, data=data, timeout=timeout) as response:
            return response.status, decode_body(
                response.read(), response.headers.get("Content-Type", "")
            )
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@dataclass
class Process:
    """One running process with its output in a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """The output's JSON log lines."""
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process and wait for it to exit; return its exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout=timeout)


@dataclass
class Deployment:
    """A release, web and optional worker, as a platform would run them."""

    env: dict[str, str]
    folder: Path
    port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)

    @property
    def base(self) -> str:
        """The web process's URL."""
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        """Run the release phase (migrations)."""
        subprocess.run(
            procfile("release"),
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, process: str, command: list[str] | None = None) -> Process:
        """Start a Procfile process (or ``command``) with PORT set."""
        log = self.folder / f"{process}-{len(self.processes)}.log"
        env = {**self.env, "PORT": str(self.port)}
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                command or procfile(process),
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started = Process(popen, log)
        self.processes.append(started)
        return started

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until /health/ready answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if call(self.base, "GET", "/health/ready", timeout=3)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        logs = "\n".join(process.output() for process in self.processes)
        raise AssertionError(f"not ready at {self.base}:\n{logs}")

    def logs(self) -> str:
        """Every process's output."""
        return "\n".join(process.output() for process in self.processes)

    def stop_all(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL)."""
        for process in self.processes:
            try:
                process.stop(timeout=30)
            except subprocess.TimeoutExpired:
                process.stop(signal.SIGKILL)


def flush_redis(env: dict[str, str]) -> None:
    """Empty the Redis database a deployment uses (rate limits, throttles, queue)."""
    if env.get("REDIS_URL"):
        Redis.from_url(env["REDIS_URL"]).flushdb()


@contextlib.contextmanager
def serving(env: dict[str, str], folder: Path) -> Iterator[Deployment]:
    """A migrated deployment serving the Procfile's web line; stopped and flushed after."""
    deploy = Deployment(env=env, folder=folder)
    flush_redis(deploy.env)
    deploy.release()
    deploy.start("web")
    deploy.wait_ready()
    try:
        yield deploy
    finally:
        deploy.stop_all()
        flush_redis(deploy.env)
