"""Re-authentication: an account without a password confirms deleting itself, changing its
email or setting a first password by a recent sign-in instead; password accounts still send
the password, and the second factor still applies on top."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from project.core import security
from project.core.settings import current_settings
from project.extensions import db
from project.models import AuditEventType, Session, User
from project.models.types import utcnow
from project.services import signin
from project.services.client import ClientInfo
from tests.conftest import PASSWORD, assert_problem, bearer, run_jobs
from tests.mailbox import Mailbox
from tests.test_second_factor import add_totp

ME = "/api/v1/users/me"
NEW_PASSWORD = "a first passphrase of mine"
_counter = itertools.count()


def passwordless_user(app: Flask) -> User:
    """An account as a provider makes it: verified, with an unusable password."""
    with app.app_context():
        email = f"nopass{next(_counter)}@example.com"
        user = User(
            email=email,
            email_normalized=email,
            password_hash=security.unusable_password(),
            email_verified=True,
        )
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def signed_in(app: Flask, user: User, *, amr: tuple[str, ...] = ("oidc",)) -> dict[str, str]:
    """Open a session for ``user`` as a sign-in by ``amr`` does; return its bearer header."""
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        tokens = signin.open_session(row, ClientInfo(), amr=list(amr))
        db.session.commit()
    return bearer(tokens.access_token)


def age_sessions(app: Flask, user: User, *, beyond: int = 1) -> None:
    """Move the user's sign-ins back to STEP_UP_MAX_AGE + ``beyond`` seconds ago."""
    with app.app_context():
        max_age = current_settings().STEP_UP_MAX_AGE
        for session in db.session.scalars(db.select(Session).filter_by(user_id=user.id)):
            session.auth_time = utcnow() - timedelta(seconds=max_age + beyond)
        db.session.commit()


def exists(app: Flask, user: User) -> bool:
    with app.app_context():
        return db.session.get(User, user.id) is not None


def stored_hash(app: Flask, user: User) -> str:
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        return row.password_hash


def test_a_recent_sign_in_confirms_deleting_an_account_without_password(
    app: Flask, client: FlaskClient
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    assert client.delete(ME, json={}, headers=headers).status_code == 204
    assert not exists(app, user)


def test_an_old_sign_in_must_sign_in_again_to_delete(app: Flask, client: FlaskClient) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    age_sessions(app, user)
    body = assert_problem(
        client.delete(ME, json={}, headers=headers), 403, "reauthentication_required"
    )
    assert "sign in again" in body["detail"].lower()
    assert exists(app, user)
    # Signing in again (a provider, a mailed link) gives a session that may.
    assert (
        client.delete(ME, json={}, headers=signed_in(app, user, amr=("email",))).status_code == 204
    )
    assert not exists(app, user)


def test_just_within_the_max_age_still_counts(app: Flask, client: FlaskClient) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    age_sessions(app, user, beyond=-30)
    assert client.delete(ME, json={}, headers=headers).status_code == 204


def test_a_password_sent_for_an_account_without_one_is_a_wrong_password(
    app: Flask, client: FlaskClient
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    hashed = stored_hash(app, user)
    for password in ("", "!", hashed, PASSWORD):
        deleted = client.delete(ME, json={"password": password}, headers=headers)
        assert_problem(deleted, 401, "invalid_credentials")
        email = client.patch(
            ME, json={"email": "x@example.com", "current_password": password}, headers=headers
        )
        assert_problem(email, 401, "invalid_credentials")
        changed = client.post(
            f"{ME}/password",
            json={"current_password": password, "new_password": NEW_PASSWORD},
            headers=headers,
        )
        assert_problem(changed, 401, "invalid_credentials")
    assert exists(app, user) and stored_hash(app, user) == hashed


def test_a_recent_sign_in_confirms_an_email_change(
    app: Flask, client: FlaskClient, inbox: Mailbox
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    response = client.patch(ME, json={"email": "Moved@example.com"}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["email"] == user.email  # not until confirmed
    run_jobs(app)
    confirm = inbox.wait_for("Moved@example.com", "Confirm your new email")
    assert (
        client.post("/api/v1/auth/verify-email", json={"token": confirm.token}).status_code == 204
    )
    assert client.get(ME, headers=headers).json["email"] == "Moved@example.com"


def test_an_old_sign_in_cannot_change_the_email(
    app: Flask, client: FlaskClient, inbox: Mailbox
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    age_sessions(app, user)
    refused = client.patch(
        ME, json={"email": "moved@example.com", "full_name": "Ada"}, headers=headers
    )
    assert_problem(refused, 403, "reauthentication_required")
    profile = client.get(ME, headers=headers).json
    assert profile["email"] == user.email and profile["full_name"] is None
    # The name alone needs no confirmation.
    renamed = client.patch(ME, json={"full_name": "Ada"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json["full_name"] == "Ada"
    run_jobs(app)
    assert inbox.messages("moved@example.com") == []


def test_a_recent_sign_in_sets_a_first_password(
    app: Flask, client: FlaskClient, login: Callable[..., Any]
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    other = signed_in(app, user, amr=("email",))
    weak = client.post(f"{ME}/password", json={"new_password": "short"}, headers=headers)
    assert "new_password" in assert_problem(weak, 422, "validation_error")["errors"]
    changed = client.post(f"{ME}/password", json={"new_password": NEW_PASSWORD}, headers=headers)
    assert changed.status_code == 204, changed.json
    assert security.has_usable_password(stored_hash(app, user))
    login(user.email, NEW_PASSWORD)
    # Other sessions end as on any password change.
    assert_problem(client.get(ME, headers=other), 401, "token_revoked")
    # From now on the password is what confirms.
    fresh = bearer(login(user.email, NEW_PASSWORD)["access_token"])
    kinds = [item["event_type"] for item in client.get(f"{ME}/events", headers=fresh).json["items"]]
    assert AuditEventType.PASSWORD_CHANGED in kinds
    missing = client.delete(ME, json={}, headers=fresh)
    assert assert_problem(missing, 422, "validation_error")["errors"] == {
        "password": ["Missing data for required field."]
    }


def test_an_old_sign_in_cannot_set_a_first_password(app: Flask, client: FlaskClient) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    age_sessions(app, user)
    refused = client.post(f"{ME}/password", json={"new_password": NEW_PASSWORD}, headers=headers)
    assert_problem(refused, 403, "reauthentication_required")
    assert not security.has_usable_password(stored_hash(app, user))


def test_the_second_factor_still_applies_on_top(app: Flask, client: FlaskClient) -> None:
    user = passwordless_user(app)
    add_totp(app, user)
    provider_only = signed_in(app, user)
    assert_problem(client.delete(ME, json={}, headers=provider_only), 403, "step_up_required")
    both = signed_in(app, user, amr=("oidc", "otp"))
    age_sessions(app, user)
    # Old on both counts: the second factor is asked first.
    assert_problem(client.delete(ME, json={}, headers=both), 403, "step_up_required")
    recent = signed_in(app, user, amr=("oidc", "otp"))
    assert client.delete(ME, json={}, headers=recent).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("delete", ME, {}, "password"),
        ("patch", ME, {"email": "moved@example.com"}, "current_password"),
        ("post", f"{ME}/password", {"new_password": NEW_PASSWORD}, "current_password"),
    ],
)
def test_a_password_account_still_needs_its_password(
    client: FlaskClient,
    user_headers: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = getattr(client, method)(path, json=body, headers=user_headers)
    assert field in assert_problem(response, 422, "validation_error")["errors"]
    assert client.get(ME, headers=user_headers).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"password": None},
        {"password": 12345678},
        {"password": ["a"]},
        {"password": {"a": 1}},
        {"password": "x" * 129},
        {"password": "\u0000"},
        {"unknown": 1},
        [],
        "password",
    ],
)
def test_odd_confirmations_are_problems_not_crashes(
    app: Flask, client: FlaskClient, body: Any
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    for method, path, payload in (
        ("delete", ME, body),
        (
            "patch",
            ME,
            {"email": "moved@example.com", "current_password": body["password"]}
            if isinstance(body, dict) and "password" in body
            else body,
        ),
        (
            "post",
            f"{ME}/password",
            {"new_password": NEW_PASSWORD, "current_password": body["password"]}
            if isinstance(body, dict) and "password" in body
            else body,
        ),
    ):
        response = getattr(client, method)(path, json=payload, headers=headers)
        assert 400 <= response.status_code < 500, (method, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
    assert exists(app, user)
    assert not security.has_usable_password(stored_hash(app, user))


def test_a_recent_sign_in_lets_an_account_without_password_add_an_authenticator_app(
    app: Flask, client: FlaskClient
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    started = client.post("/api/v1/auth/factors/totp", json={}, headers=headers)
    assert started.status_code == 201, started.json
    assert started.json["otpauth_uri"].startswith("otpauth://totp/")


def test_an_old_sign_in_cannot_add_an_authenticator_app_to_an_account_without_password(
    app: Flask, client: FlaskClient
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    age_sessions(app, user)
    refused = client.post("/api/v1/auth/factors/totp", json={}, headers=headers)
    assert_problem(refused, 403, "reauthentication_required")
    listed = client.get("/api/v1/auth/factors", headers=headers)
    assert listed.status_code == 200
    assert listed.json["factors"] == []


def test_a_password_sent_for_an_account_without_one_cannot_add_an_authenticator_app(
    app: Flask, client: FlaskClient
) -> None:
    user = passwordless_user(app)
    headers = signed_in(app, user)
    refused = client.post("/api/v1/auth/factors/totp", json={"password": PASSWORD}, headers=headers)
    assert_problem(refused, 401, "invalid_credentials")


def test_an_account_with_a_password_must_send_it_to_add_an_authenticator_app(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    headers = signed_in(app, user, amr=("pwd",))
    refused = client.post("/api/v1/auth/factors/totp", json={}, headers=headers)
    assert_problem(refused, 422, "validation_error")
    assert "password" in refused.json["errors"]
