"""Listing and revoking sessions, logout scopes, reuse detection and cross-instance revocation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_jwt_extended import decode_token as verify_token
from redis import Redis
from sqlalchemy import event, select, update

from project.core.settings import current_settings
from project.core.tokens import issue_token_pair
from project.extensions import db
from project.models import AuditEvent, AuditEventType, Session, User
from project.models.types import utcnow
from project.repositories.sessions import SessionRepository
from project.services import auth as auth_service
from project.services.client import ClientInfo
from tests.conftest import (
    PASSWORD,
    assert_problem,
    bearer,
    in_autocommit,
    is_postgres,
    make_settings,
    register_and_login,
)

Login = Callable[..., dict[str, Any]]


def test_list_sessions_marks_the_current_one(
    client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    phone = login(user.email, **{"User-Agent": "Phone/1.0"})
    laptop = login(user.email, **{"User-Agent": "Laptop/2.0"})
    response = client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"]))
    assert response.status_code == 200
    items = response.json
    assert [item["user_agent"] for item in items] == ["Laptop/2.0", "Phone/1.0"]
    assert [item["current"] for item in items] == [True, False]
    assert all(item["ip"] == "127.0.0.1" for item in items)
    assert set(items[0]) == {
        "id",
        "created_at",
        "last_used_at",
        "ip",
        "user_agent",
        "current",
        "amr",
        "auth_time",
    }
    assert items[0]["amr"] == ["pwd"] and items[0]["auth_time"] == items[0]["created_at"]
    assert (
        client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"])).status_code == 204
    )
    remaining = client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"])).json
    assert [item["user_agent"] for item in remaining] == ["Laptop/2.0"]


def test_revoke_one_session(
    client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user, stranger = make_user(), make_user()
    phone, laptop = login(user.email), login(user.email)
    theirs = login(stranger.email)
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"])).json
    phone_id = next(item["id"] for item in sessions if not item["current"])
    stranger_id = client.get("/api/v1/auth/sessions", headers=bearer(theirs["access_token"])).json[
        0
    ]["id"]

    # Another user's session, an unknown id and a bad id all look the same: not found.
    for target in (stranger_id, str(uuid.uuid4())):
        response = client.delete(
            f"/api/v1/auth/sessions/{target}", headers=bearer(laptop["access_token"])
        )
        assert_problem(response, 404, "not_found")
    assert client.get("/api/v1/users/me", headers=bearer(theirs["access_token"])).status_code == 200

    response = client.delete(
        f"/api/v1/auth/sessions/{phone_id}", headers=bearer(laptop["access_token"])
    )
    assert response.status_code == 204
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(phone["access_token"])), 401, "token_revoked"
    )
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(phone["refresh_token"])),
        401,
        "token_revoked",
    )
    again = client.delete(
        f"/api/v1/auth/sessions/{phone_id}", headers=bearer(laptop["access_token"])
    )
    assert_problem(again, 404, "not_found")
    assert client.get("/api/v1/users/me", headers=bearer(laptop["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("scope", "current_survives", "others_survive"),
    [("local", False, True), ("others", True, False), ("global", False, False)],
)
def test_logout_scopes(
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Login,
    scope: str,
    current_survives: bool,
    others_survive: bool,
) -> None:
    user = make_user()
    current, other_a, other_b = login(user.email), login(user.email), login(user.email)
    response = client.post(
        "/api/v1/auth/logout",
        query_string={"scope": scope},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 204

    def alive(tokens: dict[str, Any]) -> bool:
        return (
            client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code
            == 200
        )

    assert alive(current) is current_survives
    assert alive(other_a) is alive(other_b) is others_survive


def test_logout_rejects_an_unknown_scope(client: FlaskClient, user_headers: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/auth/logout", query_string={"scope": "everywhere"}, headers=user_headers
    )
    assert "scope" in assert_problem(response, 422, "validation_error")["errors"]


def test_logout_refuses_a_scope_sent_as_a_body(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    """A body is refused, not ignored: ignoring it would end only this session."""
    user = make_user()
    this, other = login(user.email), login(user.email)
    response = client.post(
        "/api/v1/auth/logout", json={"scope": "global"}, headers=bearer(this["access_token"])
    )
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"] == {"scope": ["Unknown field."]}
    assert client.get("/api/v1/users/me", headers=bearer(this["access_token"])).status_code == 200
    empty = client.post("/api/v1/auth/logout", json={}, headers=bearer(other["access_token"]))
    assert empty.status_code == 204


def test_reuse_interval_tolerates_a_concurrent_refresh(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(REFRESH_REUSE_INTERVAL=30).test_client()
    tokens = register_and_login(client, "racer@example.com")
    first = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    second = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert first.status_code == second.status_code == 200
    # Both answers continue the same session: both refresh tokens keep working.
    assert (
        client.get("/api/v1/users/me", headers=bearer(second.json["access_token"])).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/auth/refresh", headers=bearer(second.json["refresh_token"])
        ).status_code
        == 200
    )
    # A token two generations old is still a replay.
    replay = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert_problem(replay, 401, "refresh_token_reused")


def decode_token(token: str, application: Flask) -> dict[str, Any]:
    """The verified claims of a token issued by ``application``."""
    with application.app_context():
        return verify_token(token)


def test_a_rotation_by_a_concurrent_request_is_read_fresh(
    app_factory: Callable[..., Flask],
) -> None:
    """The refresh that loses the race sees the winner's row, not the copy it loaded first."""
    application = app_factory(REFRESH_REUSE_INTERVAL=30)
    client = application.test_client()
    tokens = register_and_login(client, "slow@example.com")
    claims = decode_token(tokens["refresh_token"], application)
    session_id = uuid.UUID(claims["sid"])
    with application.test_request_context():
        loaded = SessionRepository().get_with_user(session_id)  # as the token check did
        assert loaded is not None
        winner = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
        assert winner.status_code == 200
        pair = auth_service.refresh(
            user_id=loaded[1].id, session_id=session_id, jti=claims["jti"], client=ClientInfo()
        )
    assert (
        decode_token(pair.refresh_token, application)["jti"]
        == decode_token(winner.json["refresh_token"], application)["jti"]
    )
    renewed = client.post("/api/v1/auth/refresh", headers=bearer(pair.refresh_token))
    assert renewed.status_code == 200


def test_a_rotation_hands_back_the_user_without_secrets(
    app_factory: Callable[..., Flask],
) -> None:
    application = app_factory()
    tokens = register_and_login(application.test_client(), "snap@example.com")
    claims = decode_token(tokens["refresh_token"], application)
    with application.test_request_context():
        now = utcnow()
        rotation = SessionRepository().rotate(
            session_id=uuid.UUID(claims["sid"]),
            user_id=uuid.UUID(claims["sub"]),
            presented_jti=claims["jti"],
            new_jti="next-jti",
            now=now,
            expires_at=now + timedelta(days=1),
            ip=None,
            user_agent=None,
        )
        assert rotation is not None
        assert rotation.user.email == "snap@example.com" and rotation.user.is_active
        assert rotation.user.password_hash is None
        assert rotation.user not in db.session  # a snapshot, not the session's row
        db.session.rollback()


@contextmanager
def statements(application: Flask) -> Iterator[list[tuple[str, bool]]]:
    """Record each SQL statement's verb and whether it ran outside a transaction."""
    seen: list[tuple[str, bool]] = []

    def record(connection: Any, _cursor: object, statement: str, *_: object) -> None:
        seen.append((statement.split()[0], in_autocommit(connection.connection.dbapi_connection)))

    with application.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        with application.app_context():
            event.remove(db.engine, "before_cursor_execute", record)


def test_a_refresh_is_one_statement_without_a_transaction(
    app_factory: Callable[..., Flask],
) -> None:
    application = app_factory()
    client = application.test_client()
    tokens = register_and_login(client, "quick@example.com")
    with statements(application) as seen:
        response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    assert seen[0] == ("UPDATE", True)
    # PostgreSQL returns the user from the UPDATE; SQLite reads it by id afterwards.
    assert seen[1:] == ([] if is_postgres() else [("SELECT", True)])
    renewed = client.get("/api/v1/users/me", headers=bearer(response.json["access_token"]))
    assert renewed.json["email"] == "quick@example.com"


def test_a_replay_ends_the_session_in_one_transaction(app_factory: Callable[..., Flask]) -> None:
    application = app_factory()
    client = application.test_client()
    tokens = register_and_login(client, "replayed@example.com")
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
        == 200
    )
    with statements(application) as seen:
        replay = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert_problem(replay, 401, "refresh_token_reused")
    assert seen[0] == ("UPDATE", True)  # the refused rotation
    # Then the session is read, revoked and audited together, or not at all.
    assert [verb for verb, _ in seen[1:]] == ["SELECT", "UPDATE", "INSERT"]
    assert not any(alone for _, alone in seen[1:])


def test_a_refresh_for_a_user_made_inactive_is_refused(app_factory: Callable[..., Flask]) -> None:
    application = app_factory()
    client = application.test_client()
    tokens = register_and_login(client, "paused@example.com")
    with application.app_context():
        # Straight in the table: the session stays live, only the user changes.
        db.session.execute(
            update(User).where(User.email == "paused@example.com").values(is_active=False)
        )
        db.session.commit()
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
        401,
        "token_revoked",
    )


@pytest.mark.parametrize(
    ("claims", "path"),
    [
        ({"sid": "not-a-uuid"}, "/api/v1/auth/refresh"),
        ({"sid": 12}, "/api/v1/auth/refresh"),
        ({}, "/api/v1/auth/refresh"),
        ({"sid": 12, "ver": 0}, "/api/v1/users/me"),
        ({"sid": None, "ver": 0}, "/api/v1/users/me"),
    ],
)
def test_malformed_ids_in_a_signed_token_are_refused_not_crashed_on(
    app_factory: Callable[..., Flask], claims: dict[str, Any], path: str
) -> None:
    application = app_factory()
    client = application.test_client()
    register_and_login(client, "odd@example.com")
    with application.app_context():
        # Signed with the app's own key, so only the claims are wrong.
        if path.endswith("/refresh"):
            token = create_refresh_token(identity=str(uuid.uuid4()), additional_claims=claims)
        else:
            token = create_access_token(identity=str(uuid.uuid4()), additional_claims=claims)
        not_an_id = create_refresh_token(
            identity="not-a-uuid", additional_claims={"sid": str(uuid.uuid4())}
        )
    method = client.post if path.endswith("/refresh") else client.get
    assert_problem(method(path, headers=bearer(token)), 401, "token_revoked")
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(not_an_id)), 401, "token_revoked"
    )


def test_a_refresh_token_for_another_users_session_rotates_nothing(
    app_factory: Callable[..., Flask],
) -> None:
    application = app_factory()
    client = application.test_client()
    victim = register_and_login(client, "victim@example.com")
    other = register_and_login(client, "other@example.com")
    victim_claims = decode_token(victim["refresh_token"], application)
    with application.app_context():
        # A token whose subject and session disagree: signed with the app's own key.
        crossed = issue_token_pair(
            user_id=uuid.UUID(decode_token(other["access_token"], application)["sub"]),
            session_id=uuid.UUID(victim_claims["sid"]),
            refresh_jti=victim_claims["jti"],
            token_version=0,
            access_ttl=60,
            refresh_ttl=600,
        )
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(crossed.refresh_token)),
        401,
        "token_revoked",
    )
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(victim["refresh_token"])).status_code
        == 200
    )


@pytest.fixture
def two_instances(app_factory: Callable[..., Flask]) -> tuple[FlaskClient, FlaskClient]:
    """Two app instances over one database (and one Redis when the suite has one)."""
    return app_factory().test_client(), app_factory().test_client()


def test_revocation_on_one_instance_is_refused_by_another(
    two_instances: tuple[FlaskClient, FlaskClient],
) -> None:
    first, second = two_instances
    tokens = register_and_login(first, "twin@example.com")
    assert second.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 200
    assert (
        first.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 204
    )
    assert_problem(
        second.get("/api/v1/users/me", headers=bearer(tokens["access_token"])), 401, "token_revoked"
    )
    assert_problem(
        second.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
        401,
        "token_revoked",
    )


def test_password_change_on_one_instance_voids_tokens_on_another(
    two_instances: tuple[FlaskClient, FlaskClient],
) -> None:
    first, second = two_instances
    tokens = register_and_login(first, "twin2@example.com")
    other = second.post(
        "/api/v1/auth/login", json={"email": "twin2@example.com", "password": PASSWORD}
    ).json
    assert second.get("/api/v1/users/me", headers=bearer(other["access_token"])).status_code == 200
    changed = first.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long secret"},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 204
    for token in (tokens["access_token"], other["access_token"]):
        assert_problem(second.get("/api/v1/users/me", headers=bearer(token)), 401, "token_revoked")


@pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_revocation_is_written_to_redis_with_a_ttl(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    tokens = login(user.email)
    sid = client.get("/api/v1/auth/sessions", headers=bearer(tokens["access_token"])).json[0]["id"]
    redis = Redis.from_url(current_settings(app).REDIS_URL, decode_responses=True)
    assert redis.get(f"warden:session:{sid}") == str(user.id)
    assert 0 < redis.ttl(f"warden:session:{sid}") <= 30
    client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert redis.get(f"warden:session:{sid}") == "0"
    assert 900 < redis.ttl(f"warden:session:{sid}") <= 910


def test_an_unreachable_redis_falls_back_to_the_database(app_factory: Callable[..., Flask]) -> None:
    # Port 1 refuses connections at once: Redis is "down" for this instance.
    client = app_factory(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    tokens = register_and_login(client, "fallback@example.com")
    assert client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 200
    assert (
        client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code
        == 204
    )
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])), 401, "token_revoked"
    )


def _resigned(application: Flask, token: str, **changes: Any) -> str:
    """The token's own claims with ``changes``, signed with the app's key."""
    claims = {**decode_token(token, application), **changes}
    config = application.config
    return pyjwt.encode(claims, config["JWT_SECRET_KEY"], algorithm=config["JWT_ALGORITHM"])


@pytest.mark.parametrize("version", ["0", 0.0, False, float("inf"), None])
def test_a_token_version_that_is_not_an_integer_is_refused(
    app_factory: Callable[..., Flask], version: object
) -> None:
    application = app_factory()
    client = application.test_client()
    tokens = register_and_login(client, "version@example.com")
    assert decode_token(tokens["access_token"], application)["ver"] == 0
    control = _resigned(application, tokens["access_token"], ver=0)
    assert client.get("/api/v1/users/me", headers=bearer(control)).status_code == 200
    odd = _resigned(application, tokens["access_token"], ver=version)
    assert_problem(client.get("/api/v1/users/me", headers=bearer(odd)), 401, "token_revoked")


def test_logout_counts_only_the_sessions_it_ended(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    user = make_user()
    current, _other, expired = login(user.email), login(user.email), login(user.email)
    expired_id = decode_token(expired["access_token"], app)["sid"]
    with app.app_context():
        db.session.execute(
            update(Session)
            .where(Session.id == uuid.UUID(expired_id))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    response = client.post(
        "/api/v1/auth/logout",
        query_string={"scope": "global"},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 204
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.user_id == user.id, AuditEvent.event_type == AuditEventType.LOGOUT
            )
        ).one()
        revoked_at = db.session.scalar(
            select(Session.revoked_at).where(Session.id == uuid.UUID(expired_id))
        )
    assert event.details == {"scope": "global", "sessions": 2}
    assert revoked_at is None  # expired already: not revoked again


def test_revoking_a_revoked_session_reports_nothing(
    app: Flask, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    """What a revoke returns is what the audit events and metrics count as ended."""
    user = make_user()
    session_id = uuid.UUID(decode_token(login(user.email)["access_token"], app)["sid"])
    with app.app_context():
        repository = SessionRepository()
        assert repository.revoke([session_id], now=utcnow()) == [session_id]
        assert repository.revoke([session_id], now=utcnow()) == []
        db.session.rollback()
