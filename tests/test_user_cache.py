"""The user cache: warm requests skip the database; every change is seen promptly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, inspect, update

from project.core.settings import current_settings
from project.extensions import db, redis_client
from project.models import Role, User
from project.repositories.user_cache import SECRETS, TOMBSTONE, UserCache, decode, encode
from tests.conftest import PASSWORD, assert_problem, bearer, make_settings
from tests.servers import wait_until

Login = Callable[..., dict[str, Any]]
needs_redis = pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")


@contextmanager
def counted_statements(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL statements the app runs inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_sql_statements_per_authenticated_request(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    headers = bearer(login(make_user().email)["access_token"])
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # warms the cache
    with counted_statements(app) as statements:
        assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    # With Redis: none (session state and user both come from Redis).
    # Without Redis: one query joining the session and its user.
    expected = 0 if current_settings(app).REDIS_URL else 1
    assert len(statements) == expected, statements


@needs_redis
def test_a_demoted_admin_is_refused_on_the_next_request(
    app_factory: Callable[..., Flask],
) -> None:
    first, second = app_factory().test_client(), app_factory().test_client()
    for email in ("boss@example.com", "deputy@example.com"):
        first.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    app = app_factory()
    with app.app_context():
        db.session.execute(update(User).values(role=Role.ADMIN))
        db.session.commit()
    boss = first.post(
        "/api/v1/auth/login", json={"email": "boss@example.com", "password": PASSWORD}
    ).json
    deputy = second.post(
        "/api/v1/auth/login", json={"email": "deputy@example.com", "password": PASSWORD}
    ).json
    deputy_headers = bearer(deputy["access_token"])
    # Warm the deputy's cache entry on the second instance.
    assert second.get("/api/v1/users", headers=deputy_headers).status_code == 200
    assert second.get("/api/v1/users", headers=deputy_headers).status_code == 200
    deputy_id = second.get("/api/v1/users/me", headers=deputy_headers).json["id"]
    demoted = first.patch(
        f"/api/v1/users/{deputy_id}", json={"role": "user"}, headers=bearer(boss["access_token"])
    )
    assert demoted.status_code == 200
    # Pushed to the other instance's memory over Redis pub/sub, within milliseconds.
    wait_until(
        lambda: second.get("/api/v1/users", headers=deputy_headers).status_code == 401,
        timeout=1,
        interval=0.005,
    )
    assert_problem(second.get("/api/v1/users", headers=deputy_headers), 401, "token_revoked")


@needs_redis
def test_profile_changes_are_visible_at_once_through_the_cache(
    client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    headers = bearer(login(make_user().email)["access_token"])
    client.get("/api/v1/users/me", headers=headers)
    client.patch("/api/v1/users/me", json={"full_name": "Fresh Name"}, headers=headers)
    assert client.get("/api/v1/users/me", headers=headers).json["full_name"] == "Fresh Name"


def test_metrics_endpoint_counts_requests_by_route(
    client: FlaskClient, user_headers: dict[str, str]
) -> None:
    def value(name: str, **labels: str) -> float:
        text = client.get("/metrics").get_data(as_text=True)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        return 0.0

    before = value(
        "warden_http_requests_total",
        route="/api/v1/users/<uuid:user_id>",
        method="GET",
        status="403",
    )
    client.get(f"/api/v1/users/{uuid.uuid4()}", headers=user_headers)
    client.get(f"/api/v1/users/{uuid.uuid4()}", headers=user_headers)
    after = value(
        "warden_http_requests_total",
        route="/api/v1/users/<uuid:user_id>",
        method="GET",
        status="403",
    )
    assert after - before == 2  # labelled by the route rule, not the raw path
    # Made-up methods share one label value: a client cannot mint series without end.
    for method in ("BREW", "QZX123", "M12345"):
        assert client.open("/health/live", method=method).status_code == 405
    text = client.get("/metrics").get_data(as_text=True)
    methods = {
        sample.labels.get("method")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "warden_http_requests_total"
    }
    assert "OTHER" in methods and not methods & {"BREW", "QZX123", "M12345"}


def test_metrics_token(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(METRICS_TOKEN="scrape-me-please").test_client()
    assert_problem(client.get("/metrics"), 401, "authorization_required")
    assert_problem(client.get("/metrics", headers=bearer("wrong")), 401, "authorization_required")
    for header in ("scrape-me-please", "Basic scrape-me-please", "Bearerscrape-me-please"):
        response = client.get("/metrics", headers={"Authorization": header})
        assert_problem(response, 401, "authorization_required")
    lower = client.get("/metrics", headers={"Authorization": "bearer scrape-me-please"})
    assert lower.status_code == 200  # the scheme is case-insensitive (RFC 9110)
    response = client.get("/metrics", headers=bearer("scrape-me-please"))
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert b"warden_logins_total" in response.data


@needs_redis
def test_a_deleted_users_copy_becomes_a_tombstone(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    headers = bearer(login(user.email)["access_token"])
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # cached
    with app.app_context():
        assert redis_client.client is not None
        assert redis_client.client.get(UserCache.key(user.id, user.token_version)) not in (
            None,
            TOMBSTONE,
        )
    deleted = client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=headers)
    assert deleted.status_code == 204
    with app.app_context():
        assert redis_client.client is not None
        assert redis_client.client.get(UserCache.key(user.id, user.token_version)) == TOMBSTONE


def _columns(user: User) -> dict[str, Any]:
    """Every mapped column of ``user``, read from the model's mapper (not the cache's list)."""
    return {prop.key: getattr(user, prop.key) for prop in inspect(User).column_attrs}


@needs_redis
def test_every_column_but_the_secrets_round_trips_through_the_cache(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user(full_name="Ada Lovelace", email_verified=True, token_version=3)
    headers = bearer(login(user.email)["access_token"])
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # cached
    with app.app_context():
        assert redis_client.client is not None
        raw = redis_client.client.get(UserCache.key(user.id, user.token_version))
        row = db.session.get(User, user.id)
        assert row is not None and isinstance(raw, str)
        cached = UserCache.parse(raw)
        assert cached is not None
        expected = {key: value for key, value in _columns(row).items() if key not in SECRETS}
        assert {key: getattr(cached, key) for key in expected} == expected
        # A column the mapper knows but the copy lacks would fail here, not return null.
        assert set(json.loads(raw)) == set(expected)


@needs_redis
def test_the_password_hash_never_reaches_redis(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    headers = bearer(login(user.email)["access_token"])
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    with app.app_context():
        assert redis_client.client is not None
        row = db.session.get(User, user.id)
        assert row is not None
        client = redis_client.client
        stored = [
            str(client.get(key) if client.type(key) == "string" else client.hgetall(key))
            for key in client.keys("warden:*")
        ]
        assert stored and not any(row.password_hash in str(value) for value in stored)
        raw = redis_client.client.get(UserCache.key(user.id, user.token_version))
        assert "password_hash" not in json.loads(str(raw))


def test_a_copy_decodes_to_the_row_it_encodes(app: Flask, make_user: Callable[..., User]) -> None:
    user = make_user(full_name=None)
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        copy = decode(encode(row))
        assert copy is not None
        expected = {key: value for key, value in _columns(row).items() if key not in SECRETS}
        assert {key: getattr(copy, key) for key in expected} == expected
        assert copy.password_hash is None


@needs_redis
def test_a_token_of_an_older_version_finds_no_copy(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    headers = bearer(login(user.email)["access_token"])
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    changed = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers=headers,
    )
    assert changed.status_code == 204
    with app.app_context():
        assert redis_client.client is not None
        # The old version's copy is a tombstone: it vouches for no token any more.
        assert redis_client.client.get(UserCache.key(user.id, 0)) == TOMBSTONE
    assert_problem(client.get("/api/v1/users/me", headers=headers), 401, "token_revoked")


def test_a_copy_of_another_shape_is_a_miss(app: Flask, make_user: Callable[..., User]) -> None:
    user = make_user()
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        current = json.loads(encode(row))
        # Written by a release whose User had a column fewer, or one more.
        assert UserCache.parse(json.dumps({**current, "nickname": "ada"})) is None
        current.pop("full_name")
        assert UserCache.parse(json.dumps(current)) is None
