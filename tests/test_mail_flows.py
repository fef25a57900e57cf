"""Verification, password reset and email change, end to end through a real SMTP server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from project.extensions import db
from project.models import AuditEvent, AuditEventType, OneTimeToken, TokenPurpose, User
from project.models.types import utcnow
from project.services import one_time_tokens
from project.services.notifications import lifetime
from tests.conftest import (
    PASSWORD,
    assert_problem,
    bearer,
    is_postgres,
    run_jobs,
    wait_for_a_lock_wait,
)
from tests.mailbox import Mailbox

Login = Callable[..., dict[str, Any]]


def events_for(app: Flask, email: str) -> list[str]:
    """Audit event types about the user with this email, oldest first."""
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email_normalized == email.lower())).one()
        rows = db.session.scalars(
            select(AuditEvent).where(AuditEvent.user_id == user.id).order_by(AuditEvent.occurred_at)
        )
        return [row.event_type for row in rows]


def register(app: Flask, client: FlaskClient, email: str) -> dict[str, Any]:
    """Register through the API and let the job queue run."""
    response = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.json
    run_jobs(app)
    return response.json  # type: ignore[no-any-return]


def test_registration_mails_a_verification_link_that_works_once(
    app: Flask, client: FlaskClient, inbox: Mailbox
) -> None:
    register(app, client, "Verify.Me@example.com")
    mail = inbox.wait_for("Verify.Me@example.com", "Confirm your email")
    assert mail.message["From"] == "Warden <no-reply@localhost>"
    assert "https://app.example.com/verify-email?token=" in mail.text
    assert f"token={mail.token}" in mail.html and "<a href=" in mail.html
    assert len(mail.token) >= 43  # 32 random bytes, base64url

    assert client.post("/api/v1/auth/verify-email", json={"token": mail.token}).status_code == 204
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "verify.me@example.com", "password": PASSWORD}
    ).json
    assert client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).json[
        "email_verified"
    ]
    reused = client.post("/api/v1/auth/verify-email", json={"token": mail.token})
    assert_problem(reused, 400, "invalid_token")
    assert_problem(
        client.post("/api/v1/auth/verify-email", json={"token": "x" * 43}), 400, "invalid_token"
    )
    assert events_for(app, "verify.me@example.com")[:3] == [
        AuditEventType.USER_REGISTERED,
        AuditEventType.EMAIL_VERIFICATION_SENT,
        AuditEventType.EMAIL_VERIFIED,
    ]


def test_tokens_are_stored_only_as_hashes(app: Flask, client: FlaskClient, inbox: Mailbox) -> None:
    register(app, client, "hashes@example.com")
    token = inbox.wait_for("hashes@example.com", "Confirm").token
    with app.app_context():
        stored = db.session.scalars(select(OneTimeToken)).all()
    assert len(stored) == 1
    assert stored[0].token_hash != token and len(stored[0].token_hash) == 64
    assert token not in str(stored[0].data)


def test_resend_answers_alike_and_keeps_the_previous_link(
    app: Flask, client: FlaskClient, inbox: Mailbox
) -> None:
    register(app, client, "resend@example.com")
    first = inbox.wait_for("resend@example.com", "Confirm").token
    known = client.post("/api/v1/auth/verify-email/resend", json={"email": "resend@example.com"})
    unknown = client.post("/api/v1/auth/verify-email/resend", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json
    run_jobs(app)
    inbox_for = inbox.messages("resend@example.com")
    assert len(inbox_for) == 2
    second = inbox_for[-1].token
    assert inbox.messages("nobody@example.com") == []
    # Either link works; using one voids the other.
    assert client.post("/api/v1/auth/verify-email", json={"token": first}).status_code == 204
    assert_problem(
        client.post("/api/v1/auth/verify-email", json={"token": second}), 400, "invalid_token"
    )


def test_required_verification_blocks_login_until_confirmed(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(REQUIRE_VERIFIED_EMAIL=True)
    client = app.test_client()
    register(app, client, "strict@example.com")
    login = {"email": "strict@example.com", "password": PASSWORD}
    assert_problem(client.post("/api/v1/auth/login", json=login), 403, "email_not_verified")
    token = inbox.wait_for("strict@example.com", "Confirm").token
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 204
    assert client.post("/api/v1/auth/login", json=login).status_code == 200


def test_password_reset_end_to_end(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user = make_user(email="forgetful@example.com")
    phone, laptop = login(user.email), login(user.email)
    known = client.post("/api/v1/auth/password/forgot", json={"email": "Forgetful@example.com"})
    unknown = client.post("/api/v1/auth/password/forgot", json={"email": "stranger@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json
    run_jobs(app)
    mail = inbox.wait_for("forgetful@example.com", "Reset your password")
    assert "https://app.example.com/reset-password?token=" in mail.text
    assert inbox.messages("stranger@example.com") == []

    reset = client.post(
        "/api/v1/auth/password/reset",
        json={"token": mail.token, "new_password": "a fresh long secret"},
    )
    assert reset.status_code == 204
    run_jobs(app)
    inbox.wait_for("forgetful@example.com", "Your password was changed")
    # Every session ended: access and refresh tokens alike.
    for tokens in (phone, laptop):
        assert_problem(
            client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])),
            401,
            "token_revoked",
        )
        assert_problem(
            client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
            401,
            "token_revoked",
        )
    login(user.email, "a fresh long secret")
    again = client.post(
        "/api/v1/auth/password/reset",
        json={"token": mail.token, "new_password": "yet another secret"},
    )
    assert_problem(again, 400, "invalid_token")
    assert {AuditEventType.PASSWORD_RESET_REQUESTED, AuditEventType.PASSWORD_RESET} <= set(
        events_for(app, user.email)
    )


def test_a_weak_new_password_does_not_burn_the_reset_link(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], inbox: Mailbox
) -> None:
    user = make_user(email="weakling@example.com")
    client.post("/api/v1/auth/password/forgot", json={"email": user.email})
    run_jobs(app)
    token = inbox.wait_for(user.email, "Reset").token
    weak = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": "password1"}
    )
    assert "new_password" in assert_problem(weak, 422, "weak_password")["errors"]
    ok = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": "a good one at last"}
    )
    assert ok.status_code == 204


def test_expired_reset_links_fail_like_wrong_ones(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], inbox: Mailbox
) -> None:
    user = make_user(email="late@example.com")
    client.post("/api/v1/auth/password/forgot", json={"email": user.email})
    run_jobs(app)
    token = inbox.wait_for(user.email, "Reset").token
    with app.app_context():
        db.session.execute(update(OneTimeToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    expired = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": "too late now!"}
    )
    wrong = client.post(
        "/api/v1/auth/password/reset", json={"token": "nope", "new_password": "too late now!"}
    )
    assert (
        assert_problem(expired, 400, "invalid_token")["detail"]
        == assert_problem(wrong, 400, "invalid_token")["detail"]
    )


def test_a_password_change_voids_outstanding_reset_links(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user = make_user(email="changer@example.com")
    client.post("/api/v1/auth/password/forgot", json={"email": user.email})
    run_jobs(app)
    token = inbox.wait_for(user.email, "Reset").token
    tokens = login(user.email)
    changed = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "changed in between"},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 204
    stale = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": "hijack attempt!"}
    )
    assert_problem(stale, 400, "invalid_token")
    run_jobs(app)
    inbox.wait_for(user.email, "Your password was changed")


def test_email_change_needs_the_password_and_confirmation(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user = make_user(email="old.address@example.com")
    make_user(email="taken.address@example.com")
    headers = bearer(login(user.email)["access_token"])
    missing = client.patch(
        "/api/v1/users/me", json={"email": "new.address@example.com"}, headers=headers
    )
    assert "current_password" in assert_problem(missing, 422, "validation_error")["errors"]
    wrong = client.patch(
        "/api/v1/users/me",
        json={"email": "new.address@example.com", "current_password": "not it at all"},
        headers=headers,
    )
    assert_problem(wrong, 401, "invalid_credentials")
    taken = client.patch(
        "/api/v1/users/me",
        json={"email": "Taken.Address@example.com", "current_password": PASSWORD},
        headers=headers,
    )
    assert_problem(taken, 409, "email_taken")

    response = client.patch(
        "/api/v1/users/me",
        json={"email": "New.Address@example.com", "current_password": PASSWORD},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json["email"] == "old.address@example.com"  # not until confirmed
    run_jobs(app)
    confirm = inbox.wait_for("New.Address@example.com", "Confirm your new email")
    notice = inbox.wait_for("old.address@example.com", "being changed")
    assert "New.Address@example.com" in notice.text
    assert (
        client.post("/api/v1/auth/verify-email", json={"token": confirm.token}).status_code == 204
    )
    me = client.get("/api/v1/users/me", headers=headers).json
    assert me["email"] == "New.Address@example.com" and me["email_verified"] is True
    login("new.address@example.com")
    assert_problem(
        client.post(
            "/api/v1/auth/login", json={"email": "old.address@example.com", "password": PASSWORD}
        ),
        401,
        "invalid_credentials",
    )
    assert {AuditEventType.EMAIL_CHANGE_REQUESTED, AuditEventType.EMAIL_CHANGED} <= set(
        events_for(app, "new.address@example.com")
    )


def test_enumeration_safe_registration(app_factory: Callable[..., Flask], inbox: Mailbox) -> None:
    app = app_factory(REGISTRATION_ENUMERATION_SAFE=True)
    client = app.test_client()
    new = client.post(
        "/api/v1/auth/register", json={"email": "quiet@example.com", "password": PASSWORD}
    )
    taken = client.post(
        "/api/v1/auth/register", json={"email": "QUIET@example.com", "password": PASSWORD}
    )
    assert new.status_code == taken.status_code == 202
    assert new.json == taken.json
    assert new.json["detail"].startswith("If the address can be used")  # a body, not {}
    run_jobs(app)
    inbox.wait_for("quiet@example.com", "Confirm your email")
    inbox.wait_for("QUIET@example.com", "You already have an account")


def test_export_and_own_events(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user, other = make_user(), make_user()
    login(other.email)
    first = login(user.email)
    tokens = login(user.email)
    client.post("/api/v1/auth/logout", headers=bearer(first["access_token"]))
    export = client.get("/api/v1/users/me/export", headers=bearer(tokens["access_token"]))
    assert export.status_code == 200
    body = export.json
    assert body["profile"]["id"] == str(user.id)
    assert len(body["sessions"]) == 2
    assert sum(1 for session in body["sessions"] if session["revoked_at"]) == 1
    types = [event["event_type"] for event in body["security_events"]]
    assert types.count(AuditEventType.LOGIN_SUCCEEDED) == 2 and AuditEventType.LOGOUT in types
    assert "password_hash" not in export.get_data(as_text=True)

    page = client.get(
        "/api/v1/users/me/events", query_string={"limit": 2}, headers=bearer(tokens["access_token"])
    )
    assert page.status_code == 200 and len(page.json["items"]) == 2
    assert page.json["items"][0]["event_type"] == "logout"  # newest first
    rest = client.get(
        "/api/v1/users/me/events",
        query_string={"limit": 50, "cursor": page.json["next_cursor"]},
        headers=bearer(tokens["access_token"]),
    ).json
    seen = page.json["items"] + rest["items"]
    assert len({event["id"] for event in seen}) == len(seen) == len(types)
    assert rest["next_cursor"] is None


def test_a_refused_email_change_leaves_the_profile_untouched(
    client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user(full_name="Before")
    make_user(email="occupied@example.com")
    headers = bearer(login(user.email)["access_token"])
    response = client.patch(
        "/api/v1/users/me",
        json={"full_name": "After", "email": "occupied@example.com", "current_password": PASSWORD},
        headers=headers,
    )
    assert_problem(response, 409, "email_taken")
    assert client.get("/api/v1/users/me", headers=headers).json["full_name"] == "Before"


@pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL's row-level waits")
def test_an_address_taken_during_the_confirmation_is_409_and_the_link_survives(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    first = make_user(email="first.owner@example.com")
    second = make_user(email="second.owner@example.com")
    with app.app_context():
        token = one_time_tokens.issue(
            second.id, TokenPurpose.CHANGE_EMAIL, ttl=3600, data={"new_email": "wanted@example.com"}
        )
        db.session.commit()
        engine = db.engine
    # Another transaction takes the address and holds it: the confirmation's lookup does not
    # see it, and its write waits on the unique index until that transaction commits.
    with engine.connect() as other:
        other.execute(
            update(User)
            .where(User.id == first.id)
            .values(email="wanted@example.com", email_normalized="wanted@example.com")
        )
        answers: list[Any] = []
        confirming = threading.Thread(
            target=lambda: answers.append(
                client.post("/api/v1/auth/verify-email", json={"token": token})
            )
        )
        confirming.start()
        wait_for_a_lock_wait(engine)
        other.commit()
        confirming.join(timeout=10)
    assert_problem(answers[0], 409, "email_taken")
    with app.app_context():
        assert db.session.get(User, second.id).email == "second.owner@example.com"
        stored = db.session.scalars(select(OneTimeToken).where(OneTimeToken.user_id == second.id))
        assert [row.used_at for row in stored] == [None]  # the link still works


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (86_400, "24 hours"),
        (7_200, "2 hours"),
        (5_400, "90 minutes"),
        (3_600, "60 minutes"),
        (1_800, "30 minutes"),
        (60, "1 minute"),
        (90, "90 seconds"),
    ],
)
def test_a_links_lifetime_is_said_exactly(seconds: int, words: str) -> None:
    assert lifetime(seconds) == words


def test_mails_state_the_configured_lifetime(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    """A lifetime that is not whole hours is stated exactly: 1,800 s is not '0 hours'."""
    application = app_factory(VERIFY_TOKEN_TTL=1800, RESET_TOKEN_TTL=90)
    client = application.test_client()
    register(application, client, "lifetime@example.com")
    assert "expires in 30 minutes" in inbox.wait_for("lifetime@example.com", "Confirm").text
    client.post("/api/v1/auth/password/forgot", json={"email": "lifetime@example.com"})
    run_jobs(application)
    assert "expires in 90 seconds" in inbox.wait_for("lifetime@example.com", "Reset").text


def test_an_address_that_lengthens_when_lower_cased_is_refused(client: FlaskClient) -> None:
    """'İ' lower-cases to two characters: 137 typed, 262 stored (a 500 on PostgreSQL)."""
    email = "İ" * 125 + "@example.com"
    response = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert "email" in assert_problem(response, 422, "validation_error")["errors"]


def test_deactivation_voids_mailed_links_and_links_need_an_active_account(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Login,
    admin_headers: dict[str, str],
) -> None:
    """An attacker's pending email change must not land on an account an admin disabled."""
    user = make_user()
    headers = bearer(login(user.email)["access_token"])
    requested = client.patch(
        "/api/v1/users/me",
        json={"email": "attacker@example.com", "current_password": PASSWORD},
        headers=headers,
    )
    assert requested.status_code == 200
    deactivated = client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin_headers
    )
    assert deactivated.status_code == 200
    assert _unused_links(app, user.id) == []  # the email change link went with the rest
    with app.app_context():
        # A link issued while inactive (none is mailed then) is refused for the state alone.
        verify = one_time_tokens.issue(user.id, TokenPurpose.VERIFY_EMAIL, ttl=600)
        db.session.commit()
    refused = client.post("/api/v1/auth/verify-email", json={"token": verify})
    assert_problem(refused, 400, "invalid_token")
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored is not None and stored.email == user.email


def _unused_links(app: Flask, user_id: object) -> list[object]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(OneTimeToken.id).where(
                    OneTimeToken.user_id == user_id, OneTimeToken.used_at.is_(None)
                )
            )
        )


def test_an_email_change_to_the_other_spelling_of_a_taken_domain_is_409(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user = make_user(email="ann@example.com")
    make_user(email="bob@exämple.com")
    headers = bearer(login(user.email)["access_token"])

    def change_to(email: str) -> Any:
        return client.patch(
            "/api/v1/users/me", json={"email": email, "current_password": PASSWORD}, headers=headers
        )

    assert_problem(change_to("bob@xn--exmple-cua.com"), 409, "email_taken")
    # Free when asked for; taken in the other spelling before the link is used.
    assert change_to("carol@xn--exmple-cua.com").status_code == 200
    run_jobs(app)
    # Mailed to the address in its normalized form.
    confirm = inbox.wait_for("carol@exämple.com", "Confirm your new email")
    make_user(email="carol@exämple.com")
    used = client.post("/api/v1/auth/verify-email", json={"token": confirm.token})
    assert_problem(used, 409, "email_taken")
    assert client.get("/api/v1/users/me", headers=headers).json["email"] == "ann@example.com"


def test_a_change_to_the_same_address_in_another_spelling_changes_nothing(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, inbox: Mailbox
) -> None:
    user = make_user(email="bob@exämple.com")
    headers = bearer(login(user.email)["access_token"])
    for spelling in ("bob@xn--exmple-cua.com", "BOB@EXÄMPLE.COM"):
        response = client.patch(
            "/api/v1/users/me",
            json={"email": spelling, "current_password": PASSWORD},
            headers=headers,
        )
        assert response.status_code == 200, response.json
        assert response.json["email"] == "bob@exämple.com"
    run_jobs(app)
    assert "email.change_requested" not in events_for(app, "bob@exämple.com")
    assert inbox.messages() == []


def test_enumeration_safe_registration_finds_the_owner_in_another_spelling(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    app = app_factory(REGISTRATION_ENUMERATION_SAFE=True)
    client = app.test_client()
    for email in ("quiet@exämple.com", "quiet@xn--exmple-cua.com"):
        answer = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 202
    run_jobs(app)
    inbox.wait_for("quiet@exämple.com", "Confirm your email")
    inbox.wait_for("quiet@exämple.com", "You already have an account")
