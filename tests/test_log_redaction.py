"""Query strings, which can carry tokens, reach no log line."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from project.core.logging import JsonFormatter

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
    assert any('"path": "' + path.split("?")[0] + '"' in line for line in lines), lines
    assert not any(SECRET in line for line in lines)
