"""Sign-in with a second factor: the 202 challenge, codes, replay, step-up, amr claims."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from project.core import errors
from project.extensions import db
from project.models import TotpFactor, User
from project.models.types import utcnow
from project.services.factors import secret_box
from tests.conftest import PASSWORD, assert_problem, bearer, run_jobs

LOGIN = "/api/v1/auth/login"
SECOND = "/api/v1/auth/login/second-factor"


def add_totp(app: Flask, user: User) -> pyotp.TOTP:
    """Give ``user`` a confirmed TOTP factor directly; return a generator of its codes."""
    secret = pyotp.random_base32()
    with app.app_context():
        db.session.add(
            TotpFactor(
                user_id=user.id,
                secret_encrypted=secret_box().seal(secret),
                confirmed_at=utcnow(),
            )
        )
        db.session.commit()
    return pyotp.TOTP(secret)


def claims(token: str) -> dict[str, Any]:
    """A token's claims, unverified (the suite checks signatures elsewhere)."""
    return jwt.decode(token, options={"verify_signature": False})


def challenge_for(client: FlaskClient, email: str) -> dict[str, Any]:
    """Log in with the password; assert the 202 challenge and return it."""
    response = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 202, response.json
    body: dict[str, Any] = response.json
    assert set(body) == {"challenge", "expires_in", "factors"}
    assert "access_token" not in body and "refresh_token" not in body
    return body


@pytest.fixture
def totp_user(app: Flask, make_user: Callable[..., User]) -> tuple[User, pyotp.TOTP]:
    """A user with an authenticator app."""
    user = make_user()
    return user, add_totp(app, user)


def test_a_user_without_a_factor_gets_tokens_with_pwd(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    response = client.post(LOGIN, json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    token = claims(response.json["access_token"])
    assert token["amr"] == ["pwd"]
    assert abs(token["auth_time"] - time.time()) < 30


def test_the_password_alone_yields_a_challenge_and_a_code_the_tokens(
    client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    user, totp = totp_user
    body = challenge_for(client, user.email)
    assert body["factors"] == ["totp"] and body["expires_in"] == 300
    answered = client.post(SECOND, json={"challenge": body["challenge"], "code": totp.now()})
    assert answered.status_code == 200, answered.json
    assert answered.json["device_token"]
    access = answered.json["access_token"]
    assert claims(access)["amr"] == ["pwd", "otp"]
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(access)).json
    assert sessions[0]["amr"] == ["pwd", "otp"]
    # The challenge worked once.
    again = client.post(SECOND, json={"challenge": body["challenge"], "code": totp.now()})
    assert_problem(again, 401, "invalid_challenge")
    # Refresh keeps how and when the session was authenticated.
    refreshed = client.post(
        "/api/v1/auth/refresh", headers=bearer(answered.json["refresh_token"])
    ).json
    assert claims(refreshed["access_token"])["amr"] == ["pwd", "otp"]
    assert claims(refreshed["access_token"])["auth_time"] == claims(access)["auth_time"]


def test_a_code_is_accepted_once_per_time_step(
    client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    user, totp = totp_user
    code = totp.now()
    first = challenge_for(client, user.email)
    assert (
        client.post(SECOND, json={"challenge": first["challenge"], "code": code}).status_code == 200
    )
    second = challenge_for(client, user.email)
    replay = client.post(SECOND, json={"challenge": second["challenge"], "code": code})
    body = assert_problem(replay, 401, "invalid_code")
    assert body["attempts_left"] == 4


def test_codes_one_step_either_side_are_accepted_and_two_are_not(
    client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    user, totp = totp_user
    far = totp.at(time.time() - 90)
    body = challenge_for(client, user.email)
    assert_problem(
        client.post(SECOND, json={"challenge": body["challenge"], "code": far}), 401, "invalid_code"
    )
    near = totp.at(time.time() - 30)
    assert (
        client.post(SECOND, json={"challenge": body["challenge"], "code": near}).status_code == 200
    )


def test_five_wrong_codes_end_the_challenge(
    client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    user, totp = totp_user
    body = challenge_for(client, user.email)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1, 0):
        refused = client.post(SECOND, json={"challenge": body["challenge"], "code": wrong})
        assert assert_problem(refused, 401, "invalid_code")["attempts_left"] == left
    ended = client.post(SECOND, json={"challenge": body["challenge"], "code": totp.now()})
    assert_problem(ended, 401, "invalid_challenge")


@pytest.mark.parametrize(
    "code",
    [
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "\u0661\u0662\u0663\u0664\u0665\u0666",
        "é" * 12,
    ],
)
def test_odd_codes_are_wrong_codes(
    client: FlaskClient, totp_user: tuple[User, pyotp.TOTP], code: str
) -> None:
    user, _ = totp_user
    body = challenge_for(client, user.email)
    refused = client.post(SECOND, json={"challenge": body["challenge"], "code": code})
    assert_problem(refused, 401, "invalid_code")


def test_an_unknown_challenge_is_refused(client: FlaskClient) -> None:
    refused = client.post(SECOND, json={"challenge": "nope", "code": "123456"})
    assert_problem(refused, 401, "invalid_challenge")


def test_the_challenge_expires(
    app_factory: Callable[..., Flask], make_user: Callable[..., User]
) -> None:
    application = app_factory(SIGN_IN_CHALLENGE_TTL=30)
    client = application.test_client()
    client.post("/api/v1/auth/register", json={"email": "ex@example.com", "password": PASSWORD})
    with application.app_context():
        user = db.session.scalars(db.select(User)).one()
        db.session.expunge(user)
    totp = add_totp(application, user)
    body = challenge_for(client, user.email)
    assert body["expires_in"] == 30
    from project.models import SignInChallenge

    with application.app_context():
        pending = db.session.scalars(db.select(SignInChallenge)).one()
        pending.expires_at = utcnow()
        db.session.commit()
    refused = client.post(SECOND, json={"challenge": body["challenge"], "code": totp.now()})
    assert_problem(refused, 401, "invalid_challenge")


def test_lowering_protection_needs_a_recent_second_factor(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    # Signed in before the factor existed: the session has only a password.
    old = login(user.email)
    totp = add_totp(app, user)
    change = {"current_password": PASSWORD, "new_password": "another long passphrase"}
    refused = client.post(
        "/api/v1/users/me/password", json=change, headers=bearer(old["access_token"])
    )
    assert_problem(refused, 403, "step_up_required")
    deleted = client.delete(
        "/api/v1/users/me", json={"password": PASSWORD}, headers=bearer(old["access_token"])
    )
    assert_problem(deleted, 403, "step_up_required")
    email = client.patch(
        "/api/v1/users/me",
        json={"email": "new@example.com", "current_password": PASSWORD},
        headers=bearer(old["access_token"]),
    )
    assert_problem(email, 403, "step_up_required")
    wrong = client.post(
        "/api/v1/auth/step-up", json={"code": "000000"}, headers=bearer(old["access_token"])
    )
    assert_problem(wrong, 401, "invalid_code")
    stepped = client.post(
        "/api/v1/auth/step-up", json={"code": totp.now()}, headers=bearer(old["access_token"])
    )
    assert stepped.status_code == 204
    changed = client.post(
        "/api/v1/users/me/password", json=change, headers=bearer(old["access_token"])
    )
    assert changed.status_code == 204
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(old["refresh_token"])).json
    assert claims(refreshed["access_token"])["amr"] == ["pwd", "otp"]


def test_a_session_that_passed_the_factor_long_ago_must_step_up(
    app: Flask, client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    user, totp = totp_user
    body = challenge_for(client, user.email)
    tokens = client.post(SECOND, json={"challenge": body["challenge"], "code": totp.now()}).json
    from datetime import timedelta

    from project.models import Session

    with app.app_context():
        session = db.session.scalars(db.select(Session)).one()
        session.auth_time = utcnow() - timedelta(seconds=901)
        db.session.commit()
    refused = client.delete(
        "/api/v1/users/me", json={"password": PASSWORD}, headers=bearer(tokens["access_token"])
    )
    assert_problem(refused, 403, "step_up_required")


def test_a_password_reset_does_not_bypass_the_factor(
    app: Flask, client: FlaskClient, totp_user: tuple[User, pyotp.TOTP], inbox: Any
) -> None:
    user, _ = totp_user
    assert (
        client.post("/api/v1/auth/password/forgot", json={"email": user.email}).status_code == 202
    )
    run_jobs(app)
    token = inbox.wait_for(user.email, "Reset").token
    reset = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": "a fresh passphrase"}
    )
    assert reset.status_code == 204
    response = client.post(LOGIN, json={"email": user.email, "password": "a fresh passphrase"})
    assert response.status_code == 202 and "access_token" not in response.json


def test_a_factor_proved_elsewhere_completes_the_challenge(
    app: Flask, client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    """How a passkey answers a challenge: pending_user, then complete with its method."""
    from project.services import signin
    from project.services.client import ClientInfo

    user, _ = totp_user
    body = challenge_for(client, user.email)
    with app.test_request_context():
        assert signin.pending_user(body["challenge"]).id == user.id
        done = signin.complete(
            body["challenge"], ClientInfo(ip=None, user_agent=None), method="webauthn"
        )
        assert claims(done.tokens.access_token)["amr"] == ["pwd", "webauthn"]
        assert done.device_token
        with pytest.raises(errors.InvalidChallenge):
            signin.complete(
                body["challenge"], ClientInfo(ip=None, user_agent=None), method="webauthn"
            )
        with pytest.raises(errors.InvalidChallenge):
            signin.pending_user(body["challenge"])


def test_expired_challenges_of_a_user_go_when_a_new_one_comes(
    app: Flask, client: FlaskClient, totp_user: tuple[User, pyotp.TOTP]
) -> None:
    from project.models import SignInChallenge

    user, _ = totp_user
    challenge_for(client, user.email)
    with app.app_context():
        db.session.scalars(db.select(SignInChallenge)).one().expires_at = utcnow()
        db.session.commit()
    challenge_for(client, user.email)
    with app.app_context():
        assert len(db.session.scalars(db.select(SignInChallenge)).all()) == 1
