"""Pooled PostgreSQL connections the server closed are replaced before use, without pings."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, text

from project.extensions import db
from tests.conftest import PASSWORD, is_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL"),
]


def _register(application: Flask) -> int:
    email = f"live-{uuid.uuid4().hex[:8]}@example.com"
    response = application.test_client().post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    return response.status_code


def _terminate_other_backends(url: str) -> None:
    """End every other server process on the app's database, as a restart or failover does."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        assert ended >= 1
        for _ in range(100):
            left = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            if left == 0:
                break
            time.sleep(0.05)
    engine.dispose()


def _count_connects(application: Flask) -> list[int]:
    connects = [0]
    with application.app_context():
        event.listen(db.engine, "connect", lambda *_: connects.__setitem__(0, connects[0] + 1))
    return connects


def test_a_connection_the_server_ended_is_replaced_at_checkout(
    app_factory: Callable[..., Flask],
) -> None:
    application = app_factory()
    assert _register(application) == 201
    with application.app_context():
        assert db.engine.pool.checkedin() >= 1
        assert db.engine.pool._pre_ping is False  # the socket look alone must do it
        url = db.engine.url.render_as_string(hide_password=False)
    _terminate_other_backends(url)
    connects = _count_connects(application)

    assert _register(application) == 201
    assert connects[0] >= 1


def test_healthy_idle_connections_are_kept(app_factory: Callable[..., Flask]) -> None:
    application = app_factory()
    assert _register(application) == 201
    connects = _count_connects(application)

    for _ in range(20):
        assert _register(application) == 201

    assert connects[0] == 0
