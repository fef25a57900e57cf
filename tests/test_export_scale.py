"""A million events export through a real gunicorn worker, in bounded memory, within its timeout."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import is_postgres
from tests.live import Deployment, call, flush_redis, production_env
from tests.servers import child_pids

pytestmark = [
    pytest.mark.resilience,
    pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL"),
]

PASSWORD = "a walk in the park at dawn"
EVENTS = 1_000_000
WORKER_TIMEOUT = 30  # gunicorn.conf.py's timeout: the export must finish well inside it
RSS_GROWTH_LIMIT = 200 * 1024 * 1024


@pytest.fixture
def deployment(empty_database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A migrated production deployment with one web worker."""
    deploy = Deployment(
        env=production_env(empty_database_url, WEB_CONCURRENCY="1"), folder=tmp_path
    )
    flush_redis(deploy.env)
    deploy.release()
    yield deploy
    deploy.stop_all()
    flush_redis(deploy.env)


def _rss(pid: int, field: str) -> int:
    """A memory figure of ``pid`` from /proc, in bytes (VmRSS now, VmHWM its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def test_a_million_events_export_within_the_worker_timeout(deployment: Deployment) -> None:
    web = deployment.start("web")
    deployment.wait_ready()
    base = deployment.base
    assert (
        call(
            base, "POST", "/api/v1/auth/register", {"email": "a@example.com", "password": PASSWORD}
        )[0]
        == 201
    )
    status, tokens = call(
        base, "POST", "/api/v1/auth/login", {"email": "a@example.com", "password": PASSWORD}
    )
    assert status == 200
    status, me = call(base, "GET", "/api/v1/users/me", token=tokens["access_token"])
    assert status == 200
    with psycopg.connect(deployment.env["DATABASE_URL"].replace("+psycopg", "")) as connection:
        connection.execute(
            "INSERT INTO audit_events (id, occurred_at, event_type, user_id, details)"
            " SELECT gen_random_uuid(), now() - make_interval(secs => g),"
            " 'login.failed', %s, '{}' FROM generate_series(1, %s) AS g",
            (me["id"], EVENTS),
        )
    (worker,) = child_pids(web.popen.pid)
    before = _rss(worker, "VmRSS")
    request = urllib.request.Request(base + "/api/v1/users/me/export")
    request.add_header("Authorization", f"Bearer {tokens['access_token']}")
    started = time.monotonic()
    count, size, tail = 0, 0, b""
    with urllib.request.urlopen(request, timeout=WORKER_TIMEOUT + 30) as response:
        assert response.status == 200
        while chunk := response.read(1 << 20):
            size += len(chunk)
            # Count across chunk borders: keep the end of the last chunk with this one.
            window = tail + chunk
            count += window.count(b'"event_type":"login.failed"') - tail.count(
                b'"event_type":"login.failed"'
            )
            tail = window[-64:]
    elapsed = time.monotonic() - started
    assert tail.endswith(b"]}")
    assert count == EVENTS
    assert elapsed < WORKER_TIMEOUT, f"{elapsed:.1f} s"
    assert child_pids(web.popen.pid) == [worker], "the worker was replaced"
    growth = _rss(worker, "VmHWM") - before
    assert growth < RSS_GROWTH_LIMIT, f"{growth / 2**20:.0f} MB"
    print(
        f"{EVENTS} events, {size / 2**20:.0f} MB in {elapsed:.1f} s, RSS +{growth / 2**20:.0f} MB"
    )
