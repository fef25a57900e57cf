"""Liveness and readiness."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from project import create_app
from project.core.settings import current_settings
from project.extensions import db
from project.repositories import health as health_repository
from tests.conftest import assert_problem, is_postgres, make_settings


def test_live(client: FlaskClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_ready_when_every_dependency_answers(app: Flask, client: FlaskClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if current_settings(app).REDIS_URL else {})
    assert response.json["checks"] == expected


def test_not_ready_when_the_database_is_down(caplog: pytest.LogCaptureFixture) -> None:
    # Port 1 on loopback has no listener: connections are refused at once.
    url = "postgresql+psycopg://warden:hunter2@127.0.0.1:1/warden"
    client = create_app(make_settings(DATABASE_URL=url, REDIS_URL=None)).test_client()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="project.services.health"):
        response = client.get("/health/ready")
    assert time.monotonic() - started < 3
    assert caplog.messages == [
        "readiness: database check failed: database unreachable at 127.0.0.1:1: connection refused"
    ]
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"] == {"database": "fail"}
    assert "hunter2" not in response.get_data(as_text=True)
    # Other requests fail with a 503 problem too, not a 500.
    login = client.post(
        "/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever1"}
    )
    assert_problem(login, 503, "service_unavailable")


def test_not_ready_when_redis_is_down(
    app_factory: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    client = app_factory(REDIS_URL="redis://:s3cret@127.0.0.1:1/0").test_client()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="project.services.health"):
        response = client.get("/health/ready")
    assert time.monotonic() - started < 3
    [logged] = caplog.messages
    assert logged.startswith("readiness: redis check failed: Redis unreachable: ")
    assert "127.0.0.1:1" in logged and "s3cret" not in logged
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


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL")
def test_readiness_probes_reuse_pooled_connections(app: Flask, client: FlaskClient) -> None:
    # The endpoint is public and never rate limited: a probe must not cost a new connection.
    connects: list[object] = []

    def count(*_args: object) -> None:
        connects.append(1)

    client.get("/health/ready")
    # On every engine: a probe of its own would not use the app's.
    event.listen(Engine, "connect", count)
    try:
        statuses = [client.get("/health/ready").status_code for _ in range(30)]
    finally:
        event.remove(Engine, "connect", count)
    assert statuses == [200] * 30
    assert connects == []


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL")
def test_concurrent_readiness_probes_share_one_query(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    release = threading.Event()

    def slow_select(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement == "SELECT 1":
            statements.append(statement)
            release.wait(5)

    event.listen(engine, "before_cursor_execute", slow_select)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = [pool.submit(app.test_client().get, "/health/ready") for _ in range(8)]
            time.sleep(0.5)  # every probe is now waiting on the first one's query
            release.set()
            statuses = [answer.result(timeout=10).status_code for answer in answers]
    finally:
        event.remove(engine, "before_cursor_execute", slow_select)
    assert statuses == [200] * 8
    assert statements == ["SELECT 1"]


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL")
def test_a_stuck_probe_query_is_given_up_for_another_connection(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One stuck backend: the first probe's query never answers, the server serves the rest.
    monkeypatch.setattr(health_repository, "ANSWER_TIMEOUT_S", 0.3)
    monkeypatch.setattr(health_repository, "STUCK_AFTER_S", 0.5)
    with app.app_context():
        engine = db.engine
    release = threading.Event()
    stuck: list[str] = []

    def first_select_hangs(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement == "SELECT 1" and not stuck:
            stuck.append(statement)
            release.wait(10)

    event.listen(engine, "before_cursor_execute", first_select_hangs)
    try:
        first = client.get("/health/ready")
        soon = client.get("/health/ready")  # joins the stuck query
        time.sleep(0.6)
        later = client.get("/health/ready")  # gives it up: another connection answers
    finally:
        release.set()
        event.remove(engine, "before_cursor_execute", first_select_hangs)
    assert assert_problem(first, 503, "not_ready")["checks"]["database"] == "fail"
    assert assert_problem(soon, 503, "not_ready")["checks"]["database"] == "fail"
    assert later.status_code == 200, later.json


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL")
def test_a_probe_without_a_thread_answers_503(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    response = client.get("/health/ready")
    assert assert_problem(response, 503, "not_ready")["checks"]["database"] == "fail"


def test_a_failed_probe_keeps_no_engine_alive() -> None:
    # Nothing listens on port 1: the probe fails at once.
    engine = create_engine("postgresql+psycopg://warden@127.0.0.1:1/warden")
    future = health_repository._ping_in_background(engine)
    with pytest.raises(SQLAlchemyError):
        future.result(timeout=5)
    for thread in threading.enumerate():
        if thread.name == "warden-readiness":
            thread.join(5)
    reference = weakref.ref(engine)
    del engine, future
    gc.collect()
    assert reference() is None
