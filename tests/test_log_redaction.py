"""Query strings, which can carry tokens, reach no log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from project.core.logging import JsonFormatter
from tests.live import Deployment, call, flush_redis, production_env
from tests.servers import wait_until

SECRET = "query-secret-4242"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/users/me?access_token={SECRET}&x=1",
        f"/metrics?token={SECRET}",
        f"/health/live?{SECRET}",
    ],
)
def test_the_access_line_leaves_out_the_query(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with caplog.at_level(logging.INFO):
        client.get(path)
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any(json.loads(line).get("path") == path.split("?")[0] for line in lines), lines
    assert not any(SECRET in line for line in lines)


@pytest.mark.live
def test_gunicorn_access_log_leaves_out_the_query(empty_database_url: str, tmp_path: Path) -> None:
    deployment = Deployment(
        env=production_env(empty_database_url, GUNICORN_ACCESS_LOG="1"), folder=tmp_path
    )
    flush_redis(deployment.env)
    deployment.release()
    deployment.start("web")
    try:
        deployment.wait_ready()
        call(deployment.base, "GET", f"/api/v1/users/me?access_token={SECRET}&x=1")
        call(deployment.base, "GET", f"/metrics?token={SECRET}")
        wait_until(lambda: "GET /metrics HTTP/1.1" in deployment.logs(), timeout=10)
        assert "GET /api/v1/users/me HTTP/1.1" in deployment.logs()
        assert SECRET not in deployment.logs()
    finally:
        deployment.stop_all()
        flush_redis(deployment.env)
