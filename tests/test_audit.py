"""The audit trail: rows per action, admin search, retention, and mail delivery failures."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, request_started
from flask.testing import FlaskClient
from rq.registry import ScheduledJobRegistry
from sqlalchemy import event, insert, select

from project.core import tasks
from project.extensions import db
from project.models import AuditEvent, AuditEventType, Role, User
from project.models.types import utcnow
from project.schemas.audit import AccountExportSchema, EventSchema
from project.services import audit
from project.services import auth as auth_service
from tests.conftest import PASSWORD, assert_problem, bearer, make_settings, run_jobs
from tests.mailbox import free_port

Login = Callable[..., dict[str, Any]]


def rows(app: Flask, **filters: Any) -> list[AuditEvent]:
    """Audit rows matching column filters, oldest first."""
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.occurred_at)
        for column, value in filters.items():
            query = query.where(getattr(AuditEvent, column) == value)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def test_login_events_carry_who_where_and_the_request(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    headers = {"User-Agent": "AuditTest/1.0", "X-Request-ID": "req-audit-1"}
    client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "wrong one!"}, headers=headers
    )
    client.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": "wrong one!"})
    client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}, headers=headers
    )
    failed = rows(app, event_type=AuditEventType.LOGIN_FAILED)
    assert [(row.user_id, row.details["reason"]) for row in failed] == [
        (user.id, "wrong_password"),
        (None, "unknown_email"),
    ]
    assert failed[0].ip == "127.0.0.1" and failed[0].user_agent == "AuditTest/1.0"
    assert failed[0].request_id == "req-audit-1"
    succeeded = rows(app, event_type=AuditEventType.LOGIN_SUCCEEDED)
    assert len(succeeded) == 1 and succeeded[0].actor_id == user.id
    assert PASSWORD not in str([row.details for row in rows(app)])


def test_admin_actions_are_recorded_with_the_admin_as_actor(
    app: Flask,
    client: FlaskClient,
    admin: User,
    admin_headers: dict[str, str],
    make_user: Callable[..., User],
) -> None:
    user = make_user()
    path = f"/api/v1/users/{user.id}"
    client.patch(path, json={"full_name": "Renamed", "role": "admin"}, headers=admin_headers)
    client.patch(path, json={"is_active": False}, headers=admin_headers)
    client.delete(path, headers=admin_headers)
    events = rows(app, user_id=user.id)
    assert [event.event_type for event in events] == [
        AuditEventType.USER_UPDATED,
        AuditEventType.ROLE_CHANGED,
        AuditEventType.USER_UPDATED,
        AuditEventType.USER_DEACTIVATED,
        AuditEventType.USER_DELETED,
    ]
    assert all(event.actor_id == admin.id for event in events)
    assert events[0].details == {"fields": ["full_name", "role"]}
    assert events[1].details == {"from": "user", "to": "admin"}


def test_session_events(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    first, second = login(user.email), login(user.email)
    sid = next(
        s["id"]
        for s in client.get("/api/v1/auth/sessions", headers=bearer(second["access_token"])).json
        if not s["current"]
    )
    client.delete(f"/api/v1/auth/sessions/{sid}", headers=bearer(second["access_token"]))
    rotated = client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])).json
    client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"]))  # replay
    third = login(user.email)
    client.post(
        "/api/v1/auth/logout",
        query_string={"scope": "global"},
        headers=bearer(third["access_token"]),
    )
    types = [event.event_type for event in rows(app, user_id=user.id)]
    assert AuditEventType.SESSION_REVOKED in types
    assert AuditEventType.TOKEN_REUSE_DETECTED in types
    assert types[-1] == AuditEventType.LOGOUT
    assert rows(app, event_type=AuditEventType.LOGOUT)[-1].details["scope"] == "global"
    assert rotated and first


def test_admin_search_filters_and_pages(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
    make_user: Callable[..., User],
) -> None:
    target = make_user()
    for _ in range(3):
        client.post("/api/v1/auth/login", json={"email": target.email, "password": "bad guess!"})
    search = "/api/v1/admin/audit-events"
    assert_problem(client.get(search, headers=user_headers), 403, "forbidden")
    page = client.get(
        search,
        query_string={"user_id": str(target.id), "type": "login.failed", "limit": 2},
        headers=admin_headers,
    ).json
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert all(item["user_id"] == str(target.id) for item in page["items"])
    assert all(item["request_id"] for item in page["items"])
    rest = client.get(
        search,
        query_string={
            "user_id": str(target.id),
            "type": "login.failed",
            "cursor": page["next_cursor"],
        },
        headers=admin_headers,
    ).json
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert (
        client.get(search, query_string={"since": future}, headers=admin_headers).json["items"]
        == []
    )
    past = (utcnow() - timedelta(hours=1)).isoformat()
    assert (
        client.get(search, query_string={"until": past}, headers=admin_headers).json["items"] == []
    )
    for bad in (
        {"type": "made.up"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"user_id": "x"},
    ):
        assert_problem(
            client.get(search, query_string=bad, headers=admin_headers), 422, "validation_error"
        )


def test_forgot_password_does_the_same_work_in_the_request_for_any_address(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    statements: list[str] = []
    in_request: list[bool] = [False]

    def count(*_args: Any) -> None:
        if in_request[0]:
            statements.append(_args[2])

    def started(*_args: Any, **_kwargs: Any) -> None:
        in_request[0] = True

    def finished(response: Any) -> Any:
        in_request[0] = False
        return response

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    request_started.connect(started, app)
    app.after_request_funcs.setdefault(None, []).insert(0, finished)
    try:
        for email in (user.email, "nobody-here@example.com"):
            statements.clear()
            assert (
                client.post("/api/v1/auth/password/forgot", json={"email": email}).status_code
                == 202
            )
            # The lookup and the token happen in the job, after the response.
            assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", count)
        request_started.disconnect(started, app)
        app.after_request_funcs[None].remove(finished)


def test_a_failing_smtp_server_loses_nothing(
    app_factory: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on this port: every delivery attempt is refused.
    app = app_factory(MAIL_PORT=free_port())
    client = app.test_client()
    monkeypatch.setattr(tasks.time, "sleep", lambda _seconds: None)
    with caplog.at_level(logging.WARNING, logger="warden.tasks"):
        response = client.post(
            "/api/v1/auth/register", json={"email": "unlucky@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201  # the request never waits on SMTP
        run_jobs(app)
    with app.app_context():
        jobs = tasks.queue()
        if jobs is None:
            failures = [r for r in caplog.records if "failed" in r.getMessage()]
            assert len(failures) == tasks.LOCAL_ATTEMPTS + 1  # each attempt, then the final error
            assert failures[-1].levelno == logging.ERROR
            assert "token" not in failures[-1].getMessage()
        else:
            scheduled = ScheduledJobRegistry(queue=jobs)
            job_ids = scheduled.get_job_ids()
            assert len(job_ids) == 1  # failed once, kept and scheduled for a retry
            job = jobs.fetch_job(job_ids[0])
            assert job is not None and job.retries_left == 4


@pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_the_worker_command_delivers_queued_mail(
    app: Flask, client: FlaskClient, inbox: Any
) -> None:
    client.post("/api/v1/auth/register", json={"email": "queued@example.com", "password": PASSWORD})
    assert inbox.messages("queued@example.com") == []  # still in the queue
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    inbox.wait_for("queued@example.com", "Confirm your email")


def test_the_worker_command_needs_redis(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(REDIS_URL=None)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 1 and "REDIS_URL" in result.output


def test_roles_and_cli_admin_events(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "boss@example.com", "--password-stdin"], input=PASSWORD
    )
    assert result.exit_code == 0
    with app.app_context():
        boss = db.session.scalars(
            select(User).where(User.email_normalized == "boss@example.com")
        ).one()
        assert boss.role is Role.ADMIN and boss.email_verified
    assert rows(app, user_id=boss.id)[0].details == {"role": "admin", "via": "cli"}


def _throttled_counts(app: Flask, user_id: Any) -> list[int]:
    found = rows(app, user_id=user_id, event_type=AuditEventType.LOGIN_THROTTLED.value)
    return [event.details["count"] for event in found]


def test_throttled_logins_collapse_into_one_counted_row_per_window(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    with app.app_context():
        for _ in range(100):
            audit.record_now(AuditEventType.LOGIN_THROTTLED, user_id=user.id)
        audit.record_now(AuditEventType.LOGIN_FAILED, user_id=user.id)
    counts = _throttled_counts(app, user.id)
    # One row per minute: two only if the loop straddled a minute's end.
    assert sum(counts) == 100 and len(counts) <= 2
    assert len(rows(app, user_id=user.id, event_type=AuditEventType.LOGIN_FAILED.value)) == 1
    page = client.get("/api/v1/users/me/events", headers=bearer(login(user.email)["access_token"]))
    throttled = [e for e in page.json["items"] if e["event_type"] == "login.throttled"]
    assert sum(event["details"]["count"] for event in throttled) == 100
    assert len(throttled) == len(counts)


def test_instances_counting_at_once_lose_no_throttled_login(
    app_factory: Callable[..., Flask],
) -> None:
    instances = [app_factory(), app_factory()]
    with instances[0].app_context():
        user = auth_service.create_user(
            email="flood@example.com", password=PASSWORD, full_name=None
        )
        db.session.commit()
        user_id = user.id
    barrier = threading.Barrier(4)

    def flood(instance: Flask) -> None:
        barrier.wait()
        for _ in range(25):
            with instance.app_context():
                audit.record_now(AuditEventType.LOGIN_THROTTLED, user_id=user_id)

    threads = [threading.Thread(target=flood, args=(instances[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = _throttled_counts(instances[1], user_id)
    assert sum(counts) == 100 and len(counts) <= 2


def test_the_export_streams_every_event_as_the_event_schema_dumps_it(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    start = utcnow()
    with app.app_context():
        db.session.execute(
            insert(AuditEvent),
            [
                {
                    "id": uuid.uuid4(),
                    # Several batches, and ties on the time that only the id orders.
                    "occurred_at": start - timedelta(seconds=n // 2),
                    "event_type": AuditEventType.LOGIN_FAILED.value,
                    "user_id": user.id,
                    "ip": f"192.0.2.{n % 200}",
                    "details": {"n": n},
                }
                for n in range(2 * audit.EXPORT_BATCH + 7)
            ],
        )
        db.session.commit()
    response = client.get(
        "/api/v1/users/me/export", headers=bearer(login(user.email)["access_token"])
    )
    assert response.status_code == 200
    body = response.json
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.user_id == user.id)
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        ).all()
        expected = EventSchema(many=True).dump(events)
    assert len(body["security_events"]) == 2 * audit.EXPORT_BATCH + 8  # and the login
    assert body["security_events"] == expected
    assert set(body) == set(AccountExportSchema().fields)
    assert body["profile"]["id"] == str(user.id) and len(body["sessions"]) == 1
