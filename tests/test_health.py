"""Liveness and readiness."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from project import create_app
from tests.conftest import assert_problem, make_config


def test_live(client: FlaskClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_ready_when_every_dependency_answers(app: Flask, client: FlaskClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if app.config["REDIS_URL"] else {})
    assert response.json["checks"] == expected


def test_not_ready_when_the_database_is_down() -> None:
    # Port 1 on loopback has no listener: connections are refused at once.
    url = "postgresql+psycopg://warden:hunter2@127.0.0.1:1/warden"
    config = make_config(
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
        REDIS_URL=None,
    )
    client = create_app(config).test_client()
    started = time.monotonic()
    response = client.get("/health/ready")
    assert time.monotonic() - started < 3
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"] == {"database": "fail"}
    assert "hunter2" not in response.get_data(as_text=True)
    # Other requests fail with a 503 problem too, not a 500.
    login = client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever1"}
    )
    assert_problem(login, 503, "service_unavailable")


def test_not_ready_when_redis_is_down(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(REDIS_URL="redis://:s3cret@127.0.0.1:1/0").test_client()
    started = time.monotonic()
    response = client.get("/health/ready")
    assert time.monotonic() - started < 3
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"] == {"database": "ok", "redis": "fail"}
    assert "s3cret" not in response.get_data(as_text=True)


def test_redis_can_be_made_optional_for_readiness(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(
        REDIS_URL="redis://127.0.0.1:1/0", READY_REQUIRES_REDIS=False
    ).test_client()
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "redis": "fail"}
