"""Mailed links survive requests for new ones, and an address gets at most its mail budget."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from project.extensions import db
from project.models import AuditEvent, AuditEventType, User
from tests.conftest import PASSWORD, assert_problem, bearer, run_jobs
from tests.live import Deployment, call, flush_redis, production_env
from tests.mailbox import Mailbox, Received

Login = Callable[..., dict[str, Any]]
# Five client addresses, five requests each: inside each address's own rate limit.
CLIENTS = [f"127.0.{n}.{n + 1}" for n in range(1, 6)]


def mails(inbox: Mailbox, to: str, subject: str) -> list[Received]:
    """The mails to ``to`` whose subject contains ``subject``, oldest first."""
    return [mail for mail in inbox.messages(to) if subject in mail.subject]


def reset(client: FlaskClient, token: str, password: str = "a brand new secret") -> Any:
    """Use a reset link."""
    return client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": password}
    )


def suppressions(app: Flask) -> list[AuditEvent]:
    """The audited suppressions."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == AuditEventType.MAIL_SUPPRESSED)
            )
        )


def test_a_strangers_reset_request_neither_voids_the_owners_link_nor_floods_the_mailbox(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(MAIL_BUDGET="3 per hour")
    client = app.test_client()
    email = "victim@example.com"
    assert client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert client.post("/api/v1/auth/password/forgot", json={"email": email}).status_code == 202
    run_jobs(app)
    owners = inbox.wait_for(email, "Reset your password").token
    answers = [
        client.post(
            "/api/v1/auth/password/forgot",
            json={"email": "Victim@Example.com"},
            environ_base={"REMOTE_ADDR": address},
        )
        for address in CLIENTS
        for _ in range(5)
    ]
    run_jobs(app)
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.get_data() for answer in answers}) == 1
    assert len(mails(inbox, email, "Reset your password")) == 3
    events = suppressions(app)
    assert len(events) == 1  # once per window, not once per request
    assert events[0].details == {"purpose": "reset_password"}

    assert reset(client, owners).status_code == 204
    # Using one link, by changing the password, voids every other one.
    for mail in mails(inbox, email, "Reset your password")[1:]:
        assert_problem(reset(client, mail.token, "yet another secret"), 400, "invalid_token")


def test_a_strangers_resend_leaves_the_owners_verification_link_working(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(MAIL_BUDGET="3 per hour")
    client = app.test_client()
    email = "unconfirmed@example.com"
    client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    run_jobs(app)
    owners = inbox.wait_for(email, "Confirm your email").token
    answers = [
        client.post(
            "/api/v1/auth/verify-email/resend",
            json={"email": email},
            environ_base={"REMOTE_ADDR": address},
        )
        for address in CLIENTS
        for _ in range(5)
    ]
    run_jobs(app)
    assert {answer.status_code for answer in answers} == {202}
    sent = mails(inbox, email, "Confirm your email")
    assert len(sent) == 3  # the registration's counts too
    assert [event.details["purpose"] for event in suppressions(app)] == ["verify_email"]

    assert client.post("/api/v1/auth/verify-email", json={"token": owners}).status_code == 204
    for mail in sent[1:]:
        used = client.post("/api/v1/auth/verify-email", json={"token": mail.token})
        assert_problem(used, 400, "invalid_token")


def test_only_the_newest_links_stay_valid(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(LINKS_KEPT=2)
    client = app.test_client()
    email = "keeper@example.com"
    client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    for _ in range(3):
        client.post("/api/v1/auth/password/forgot", json={"email": email})
        run_jobs(app)
    oldest, older, newest = (mail.token for mail in mails(inbox, email, "Reset your password"))
    assert_problem(reset(client, oldest), 400, "invalid_token")
    assert reset(client, older).status_code == 204
    assert_problem(reset(client, newest, "yet another secret"), 400, "invalid_token")


def test_a_password_change_voids_every_reset_link(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user = make_user(email="two.links@example.com")
    for _ in range(2):
        client.post("/api/v1/auth/password/forgot", json={"email": user.email})
        run_jobs(app)
    links = [mail.token for mail in mails(inbox, user.email, "Reset your password")]
    assert len(links) == 2
    changed = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "changed in between"},
        headers=bearer(login(user.email)["access_token"]),
    )
    assert changed.status_code == 204
    for token in links:
        assert_problem(reset(client, token), 400, "invalid_token")


def test_email_change_confirmations_to_one_address_stay_within_the_budget(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(MAIL_BUDGET="3 per hour")
    client = app.test_client()
    client.post("/api/v1/auth/register", json={"email": "mover@example.com", "password": PASSWORD})
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "mover@example.com", "password": PASSWORD}
    ).json
    for _ in range(5):
        response = client.patch(
            "/api/v1/users/me",
            json={"email": "target@example.com", "current_password": PASSWORD},
            headers=bearer(tokens["access_token"]),
        )
        assert response.status_code == 200
    run_jobs(app)
    sent = mails(inbox, "target@example.com", "Confirm your new email")
    assert len(sent) == 3
    # The suppressed requests issued no link, so the newest mailed one still works.
    assert (
        client.post("/api/v1/auth/verify-email", json={"token": sent[-1].token}).status_code == 204
    )
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).where(AuditEvent.event_type == AuditEventType.MAIL_SUPPRESSED)
        )
    assert count == 1


@pytest.fixture
def deployment(empty_database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A production deployment with its default budget; one web worker without Redis."""
    env = production_env(empty_database_url)
    if not env.get("REDIS_URL"):
        # Without Redis each worker counts on its own: one worker makes the count exact.
        env["WEB_CONCURRENCY"] = "1"
    deploy = Deployment(env=env, folder=tmp_path)
    flush_redis(deploy.env)
    deploy.release()
    yield deploy
    deploy.stop_all()
    flush_redis(deploy.env)


def post_from(base: str, source: str, path: str, body: dict[str, str]) -> int:
    """POST JSON over a socket bound to the client address ``source``; return the status."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15, source_address=(source, 0))
    try:
        connection.request(
            "POST", path, json.dumps(body), headers={"Content-Type": "application/json"}
        )
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.live
def test_requests_from_many_addresses_deliver_only_the_budget(
    deployment: Deployment, inbox: Mailbox
) -> None:
    deployment.start("web")
    if deployment.env.get("REDIS_URL"):
        deployment.start("worker")
    deployment.wait_ready()
    email = "popular@example.com"
    registered = call(
        deployment.base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD}
    )
    assert registered[0] == 201
    statuses = [
        post_from(deployment.base, address, "/api/v1/auth/password/forgot", {"email": email})
        for address in CLIENTS
        for _ in range(5)
    ]
    assert statuses == [202] * 25
    inbox.wait_for(email, "Reset your password", timeout=30)
    wait_until_quiet(inbox, email)
    assert len(mails(inbox, email, "Reset your password")) == 3


def wait_until_quiet(inbox: Mailbox, email: str, quiet: float = 3.0, timeout: float = 30) -> None:
    """Wait until no mail to ``email`` has arrived for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    count, since = len(inbox.messages(email)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = len(inbox.messages(email))
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"mail to {email} kept arriving")


def test_the_budget_holds_in_memory_while_redis_is_down(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(MAIL_BUDGET="3 per hour", REDIS_URL="redis://127.0.0.1:9/0")
    client = app.test_client()
    email = "offline@example.com"
    client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    for _ in range(5):
        assert client.post("/api/v1/auth/password/forgot", json={"email": email}).status_code == 202
    assert len(mails(inbox, email, "Reset your password")) == 3
