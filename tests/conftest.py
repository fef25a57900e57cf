"""Fixtures: the app from the factory, a clean database per test, users and tokens."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import RedisError
from rq import SimpleWorker
from sqlalchemy import Engine, create_engine, make_url, text

from config import Settings, database_url, load_settings
from project import create_app
from project.core import tasks
from project.core.verified_tokens import CACHE_KEY
from project.extensions import db, limiter, redis_client
from project.models import Role, User
from project.repositories import local_state
from project.services import auth as auth_service
from tests.mailbox import Mailbox, start_smtp_server

PASSWORD = "correct horse battery staple"
_counter = itertools.count()


class BufferedClient(FlaskClient):
    """A test client that closes each response, as a WSGI server does.

    Closing runs the work an app defers until after the response (mail without Redis).
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def build_app(settings: Settings) -> Flask:
    """An app from the factory with the buffered test client."""
    application = create_app(settings)
    application.test_client_class = BufferedClient
    return application


@pytest.fixture(scope="session", autouse=True)
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server for the whole run; every app created by the tests sends to it."""
    controller, box = start_smtp_server()
    settings = {
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(controller.port),
        "MAIL_USE_TLS": "false",
        "FRONTEND_URL": "https://app.example.com",
    }
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield box
    controller.stop()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def inbox(mailbox: Mailbox) -> Mailbox:
    """The SMTP server's mailbox, emptied for this test."""
    mailbox.clear()
    return mailbox


def run_jobs(application: Flask) -> None:
    """Let a real RQ worker run the queued jobs (no-op without Redis: they already ran)."""
    with application.app_context():
        jobs = tasks.queue()
        if jobs is not None:
            SimpleWorker([jobs], connection=jobs.connection).work(burst=True)


def make_settings(**overrides: Any) -> Settings:
    """Settings of the testing environment, read from the real one, some replaced."""
    settings = load_settings({**os.environ, "APP_ENV": "testing"})
    return dataclasses.replace(settings, **overrides)


def is_postgres() -> bool:
    """Whether the suite runs against PostgreSQL."""
    return os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database on the backend under test, dropped afterwards."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not is_postgres():
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"warden_tmp_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(database_url(base))
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def app_factory(empty_database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build extra app instances with settings overrides over one fresh, shared database."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        application = build_app(make_settings(DATABASE_URL=empty_database_url, **overrides))
        if not apps:
            with application.app_context():
                db.create_all()
        apps.append(application)
        return application

    yield build
    for application in apps:
        reset_shared_state(application)
        with application.app_context():
            db.engine.dispose()


def in_autocommit(raw: Any) -> bool:
    """Whether a driver connection sends each statement on its own (no BEGIN)."""
    return bool(raw.autocommit) if hasattr(raw, "pgconn") else raw.isolation_level is None


def register_and_login(client: FlaskClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Register through the API, log in, and return the token pair."""
    created = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201, created.json
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    """The application under test, with a fresh schema."""
    application = build_app(make_settings())
    with application.app_context():
        db.drop_all()
        db.create_all()
    yield application
    with application.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table after each test that used the app, so tests share no state."""
    yield
    if "app" not in request.fixturenames:
        return
    application: Flask = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = [table.name for table in db.metadata.sorted_tables]
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for name in reversed(tables):
                db.session.execute(text(f"DELETE FROM {name}"))
        db.session.commit()
        reset_shared_state(application)


def reset_shared_state(application: Flask) -> None:
    """Forget rate-limit counters, login throttles and session markers."""
    with application.app_context():
        application.extensions.pop("warden.login_attempts", None)
        application.extensions[CACHE_KEY].clear()
        memory = application.extensions.get(local_state.STATE_KEY)
        if memory is not None:
            memory.clear()
            memory.permits.clear()
        with contextlib.suppress(RedisError):  # some tests point at a Redis that is down
            limiter.reset()
            if redis_client.client is not None:
                redis_client.client.flushdb()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    """Create a user with a unique email; keyword arguments set model fields."""

    def make(email: str | None = None, password: str = PASSWORD, **fields: Any) -> User:
        email = email or f"user{next(_counter)}@example.com"
        with app.app_context():
            user = auth_service.create_user(
                email=email, password=password, full_name=fields.pop("full_name", None), **fields
            )
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Log a user in through the API and return the token pair."""

    def do_login(email: str, password: str = PASSWORD, **headers: str) -> dict[str, Any]:
        response = client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
        )
        assert response.status_code == 200, response.json
        return response.json  # type: ignore[no-any-return]

    return do_login


def bearer(token: str) -> dict[str, str]:
    """An Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def user_headers(
    make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> dict[str, str]:
    """Authorization headers of a fresh normal user."""
    user = make_user()
    return bearer(login(user.email)["access_token"])


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    """An active admin."""
    return make_user(role=Role.ADMIN)


@pytest.fixture
def admin_headers(admin: User, login: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """Authorization headers of an admin."""
    return bearer(login(admin.email)["access_token"])


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is a problem+json document with this status and code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:warden:problem:{code}"
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def wait_for_a_lock_wait(engine: Engine, timeout: float = 10) -> None:
    """Return once some PostgreSQL backend waits on a lock (another thread's request)."""
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with engine.connect() as probe:
            if probe.execute(query).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("no request waited on a lock")
