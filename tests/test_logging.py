"""Structured logs: one JSON line per request, and no forged lines."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from project.core import context
from project.core.logging import ConsoleFormatter, ContextFilter, JsonFormatter
from project.models import User
from tests.conftest import PASSWORD, run_jobs
from tests.mailbox import free_port


def _request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "warden.request"]


def test_one_access_line_per_request(
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = make_user()
    token = login(user.email)["access_token"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = client.get(
            "/api/v1/users/me/events?limit=5",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"},
        )
    records = _request_records(caplog)
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["message"] == "request"
    # The path without its query string, which may carry anything.
    assert line["method"] == "GET" and line["path"] == "/api/v1/users/me/events"
    assert line["status"] == response.status_code == 200
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == "req-42"
    assert line["user_id"] == str(user.id)
    assert token not in json.dumps(line)
    assert PASSWORD not in json.dumps(line)


def test_newlines_cannot_forge_a_line() -> None:
    record = logging.makeLogRecord(
        {"msg": "login failed for %s", "args": ('evil\n{"level": "info"}',)}
    )
    ContextFilter().filter(record)
    for formatter in (JsonFormatter(), ConsoleFormatter()):
        assert "\n" not in formatter.format(record)
    assert json.loads(JsonFormatter().format(record))["message"].endswith('{"level": "info"}')


def test_context_is_stamped_outside_requests_as_null() -> None:
    context.clear()
    record = logging.LogRecord("warden", logging.INFO, __file__, 1, "boot", None, None)
    ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "request_id" not in line and line["level"] == "info"


@pytest.mark.parametrize("formatter", [JsonFormatter(), ConsoleFormatter()])
def test_a_failed_jobs_arguments_are_not_logged(formatter: logging.Formatter) -> None:
    """RQ's worker logs a failed job with its arguments: a mail's text holds its link."""
    record = logging.makeLogRecord(
        {
            "name": "rq.worker",
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": "[Job %s]: exception raised while executing (%s)",
            "args": ("abc123", "project.core.tasks.run_job"),
            "func": "project.core.tasks.run_job",
            "arguments": ["deliver", {"text": "https://app/reset?token=SECRET-TOKEN"}],
            "kwargs": {"token": "SECRET-TOKEN"},
            "job_id": "abc123",
        }
    )
    line = formatter.format(record)
    assert "SECRET-TOKEN" not in line
    assert "abc123" in line and "run_job" in line


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL")
def test_a_mail_job_that_fails_in_the_worker_logs_no_link(
    app_factory: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    application = app_factory(MAIL_PORT=free_port(), MAIL_TIMEOUT=1)
    client = application.test_client()
    registered = client.post(
        "/api/v1/auth/register", json={"email": "nomail@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201
    with caplog.at_level(logging.INFO):
        run_jobs(application)  # SMTP refuses: RQ logs the failure and schedules a retry
    failures = [record for record in caplog.records if record.name.startswith("rq.")]
    assert any(record.levelno >= logging.ERROR for record in failures)
    for record in failures:
        line = JsonFormatter().format(record)
        assert "verify-email?token=" not in line and "nomail@example.com" not in line, line


def test_a_line_orjson_refuses_is_still_written() -> None:
    record = logging.makeLogRecord({"msg": "odd", "big": 2**70, "text": "\ud800", "n": None})
    line = json.loads(JsonFormatter().format(record))
    assert line["big"] == 2**70 and line["text"] == "\ud800"
    assert "n" not in line  # a None extra is left out


def test_time_is_utc_iso_to_the_millisecond() -> None:
    formatter = JsonFormatter()
    for created in (1_780_000_000.9994, 1_780_000_001.0, 1_780_000_001.25):
        record = logging.makeLogRecord({"msg": "tick"})
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        expected = datetime.fromtimestamp(int(created), UTC).isoformat()
        stamp = json.loads(formatter.format(record))["time"]
        assert stamp == expected.replace("+00:00", f".{int(record.msecs):03d}+00:00")
