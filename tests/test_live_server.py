"""The Procfile's release and web lines, run for real: gunicorn serving over HTTP."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "a live server password"

pytestmark = pytest.mark.live


def _procfile(process: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command.strip())
    raise AssertionError(f"no {process} line in the Procfile")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    base: str, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """Send one JSON request; return the status and the decoded body."""
    request = urllib.request.Request(base + path, method=method)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, data=data, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def live_server(empty_database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run release then web from the Procfile in production mode; yield the URL and log file."""
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "APP_ENV": "production",
        "SECRET_KEY": "k" * 40,
        "JWT_SECRET_KEY": "j" * 40,
        "DATABASE_URL": empty_database_url,
        "BCRYPT_ROUNDS": "4",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        "MAIL_BACKEND": "console",
    }
    subprocess.run(
        _procfile("release"), cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    log = tmp_path / "web.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            _procfile("web"), cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if call(base, "GET", "/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("server did not become ready:\n" + log.read_text())
        yield base, log
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_a_new_user_journey_over_http(live_server: tuple[str, Path]) -> None:
    base, log = live_server
    status, user = call(
        base,
        "POST",
        "/api/v1/auth/register",
        {"email": "journey@example.com", "password": PASSWORD},
    )
    assert status == 201 and user["email"] == "journey@example.com"
    status, tokens = call(
        base, "POST", "/api/v1/auth/login", {"email": "journey@example.com", "password": PASSWORD}
    )
    assert status == 200
    status, me = call(base, "GET", "/api/v1/users/me", token=tokens["access_token"])
    assert status == 200 and me["id"] == user["id"]
    status, rotated = call(base, "POST", "/api/v1/auth/refresh", token=tokens["refresh_token"])
    assert status == 200
    # Many requests spread over both workers: revocation is decided by shared state only.
    assert call(base, "POST", "/api/v1/auth/logout", token=rotated["access_token"])[0] == 204
    for _ in range(6):
        status, problem = call(base, "GET", "/api/v1/users/me", token=rotated["access_token"])
        assert (status, problem["code"]) == (401, "token_revoked")
    status, problem = call(base, "GET", "/api/v1/nothing")
    assert status == 404 and problem["code"] == "not_found"

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "warden.request"]
    assert len(requests) >= 11
    assert all(
        {"request_id", "method", "path", "status", "duration_ms"} <= set(line) for line in requests
    )
    text = log.read_text()
    for secret in (PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in text
