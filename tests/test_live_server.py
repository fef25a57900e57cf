"""The Procfile's processes run for real: gunicorn with two workers, the RQ worker, honcho."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import BIN, Deployment, call, flush_redis, production_env
from tests.mailbox import Mailbox
from tests.servers import wait_until

PASSWORD = "a walk in the park at dawn"

pytestmark = pytest.mark.live


@pytest.fixture
def deployment(empty_database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A migrated production deployment; processes are started by each test."""
    deploy = Deployment(env=production_env(empty_database_url), folder=tmp_path)
    flush_redis(deploy.env)
    deploy.release()
    yield deploy
    deploy.stop_all()
    flush_redis(deploy.env)


def test_a_new_user_journey_over_http(deployment: Deployment) -> None:
    deployment.start("web")
    deployment.wait_ready()
    base = deployment.base
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
    # Requests spread over both workers: revocation is decided by shared state only.
    assert call(base, "POST", "/api/v1/auth/logout", token=rotated["access_token"])[0] == 204
    for _ in range(6):
        status, problem = call(base, "GET", "/api/v1/users/me", token=rotated["access_token"])
        assert (status, problem["code"]) == (401, "token_revoked")
    status, problem = call(base, "GET", "/api/v1/nothing", headers={"X-Request-ID": "journey-404"})
    assert status == 404 and problem["code"] == "not_found"
    wait_until(lambda: "journey-404" in deployment.logs(), timeout=10)
    time.sleep(0.2)  # a second line, if there were one, is written with the first
    lines = [line for line in deployment.logs().splitlines() if "journey-404" in line]
    assert len(lines) == 1, lines  # one line per request, not one per handler
    # gunicorn's control socket is this instance's own, not one shared path per user.
    assert f"warden-gunicorn-{deployment.port}.ctl" in deployment.logs()


def _raw(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are; the status, Content-Type and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), body


@pytest.mark.parametrize(
    "chunks",
    [b"zz\r\n", b"2\r\n{}XX0\r\n\r\n", b"2\r\n{}\r\n0\r\nBad Trailer\r\n\r\n"],
    ids=["bad-size", "no-terminator", "bad-trailer"],
)
def test_a_malformed_chunked_body_is_a_400_problem(deployment: Deployment, chunks: bytes) -> None:
    deployment.start("web")
    deployment.wait_ready()
    status, content_type, body = _raw(
        deployment.port,
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
    )
    assert (status, content_type) == (400, "application/problem+json"), body
    assert json.loads(body)["code"] == "bad_request"
    assert "unhandled error" not in deployment.logs()


def _samples(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_add_up_across_workers(deployment: Deployment) -> None:
    web = deployment.start("web")
    deployment.wait_ready()
    base = deployment.base
    # Concurrent batches until both workers have served some (the kernel picks who accepts).
    sent = 0
    for _ in range(25):
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: call(base, "GET", "/health/live")[0], range(20)))
        assert statuses == [200] * 20
        sent += 20
        time.sleep(0.05)
        if (
            len({line["pid"] for line in web.json_lines() if line.get("path") == "/health/live"})
            == 2
        ):
            break
    for index in range(3):
        call(
            base,
            "POST",
            "/api/v1/auth/login",
            {"email": f"nobody{index}@example.com", "password": "wrong pass"},
        )
    status, text = call(base, "GET", "/metrics")
    assert status == 200
    assert (
        _samples(
            text, "warden_http_requests_total", route="/health/live", method="GET", status="200"
        )
        == sent
    )
    assert _samples(text, "warden_logins_total", result="failed") == 3
    assert (
        _samples(text, "warden_http_request_duration_seconds_count", route="/health/live") == sent
    )
    # The requests really were spread over both workers, and their counts were summed.
    pids = {line["pid"] for line in web.json_lines() if line.get("path") == "/health/live"}
    assert len(pids) == 2


def test_sigterm_drains_in_flight_requests(deployment: Deployment) -> None:
    deployment.env["BCRYPT_ROUNDS"] = "15"  # about two seconds of hashing: a slow request
    web = deployment.start("web")
    deployment.wait_ready()
    result: dict[str, Any] = {}

    def slow_register() -> None:
        result["response"] = call(
            deployment.base,
            "POST",
            "/api/v1/auth/register",
            {"email": "slow@example.com", "password": PASSWORD},
            timeout=30,
        )

    thread = threading.Thread(target=slow_register)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert web.stop(signal.SIGTERM, timeout=30) == 0
    thread.join(timeout=30)
    assert result["response"][0] == 201, result
    assert time.monotonic() - started < 25


def test_honcho_runs_the_web_line(deployment: Deployment) -> None:
    deployment.start("honcho", [str(BIN / "honcho"), "start", "web", "-p", str(deployment.port)])
    deployment.wait_ready()
    status, body = call(deployment.base, "GET", "/health/ready")
    assert status == 200 and body["checks"]["database"] == "ok"


def test_no_secret_reaches_any_log(deployment: Deployment, inbox: Mailbox) -> None:
    deployment.start("web")
    if deployment.env.get("REDIS_URL"):
        deployment.start("worker")
    deployment.wait_ready()
    base = deployment.base
    email = "secretive@example.com"
    assert (
        call(base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD})[0]
        == 201
    )
    _, tokens = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    _, rotated = call(base, "POST", "/api/v1/auth/refresh", token=tokens["refresh_token"])
    assert call(base, "POST", "/api/v1/auth/password/forgot", {"email": email})[0] == 202
    reset_mail = inbox.wait_for(email, "Reset your password", timeout=30)
    new_password = "the new secret words"
    reset = call(
        base,
        "POST",
        "/api/v1/auth/password/reset",
        {"token": reset_mail.token, "new_password": new_password},
    )
    assert reset[0] == 204
    failing = call(
        base,
        "GET",
        "/api/v1/users/me",
        headers={
            "Authorization": "Bearer forged-bearer-value-123",
            "Cookie": "access_token_cookie=cookie-value-456",
        },
    )
    assert failing[0] == 401
    call(
        base,
        "POST",
        "/api/v1/auth/login",
        {"email": email, "password": "wrong-password-789"},
        headers={"X-Request-ID": "last-of-the-secrets"},
    )
    # Wait for the last request's own line, so every line of the run is in what is checked.
    wait_until(lambda: "last-of-the-secrets" in deployment.logs(), timeout=10)
    logs = deployment.logs()
    assert '"logger":"warden.request"' in logs  # the logs were captured
    secrets = [
        PASSWORD,
        new_password,
        "wrong-password-789",
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        reset_mail.token,
        "reset-password?token=",
        "forged-bearer-value-123",
        "cookie-value-456",
    ]
    for secret in secrets:
        assert secret not in logs, secret
    for line in filter(None, logs.splitlines()):
        assert line.startswith("{"), line  # every line, gunicorn's and RQ's included, is JSON
