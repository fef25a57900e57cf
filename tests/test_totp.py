"""Authenticator apps and recovery codes through the API, with codes computed by pyotp."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from project.extensions import db
from project.models import AuditEvent, RecoveryCode, TotpFactor, User
from tests.conftest import PASSWORD, assert_problem, bearer, make_settings, run_jobs

FACTORS = "/api/v1/auth/factors"
LOGIN = "/api/v1/auth/login"
SECOND = "/api/v1/auth/login/second-factor"


def enrol(client: FlaskClient, access: str) -> tuple[str, pyotp.TOTP, list[str]]:
    """Set up an authenticator app for the token's user: (factor id, codes, recovery codes)."""
    started = client.post(
        f"{FACTORS}/totp", json={"label": "phone", "password": PASSWORD}, headers=bearer(access)
    )
    assert started.status_code == 201, started.json
    body = started.json
    assert body["otpauth_uri"].startswith("otpauth://totp/Warden:")
    assert body["qr_svg"].startswith("<svg")
    totp = pyotp.TOTP(body["secret"])
    confirmed = client.post(
        f"{FACTORS}/totp/{body['id']}/confirm", json={"code": totp.now()}, headers=bearer(access)
    )
    assert confirmed.status_code == 200, confirmed.json
    codes = confirmed.json["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return body["id"], totp, codes


def sign_in(client: FlaskClient, email: str, code: str) -> Any:
    """Password, then ``code`` on the challenge: the second answer."""
    challenge = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert challenge.status_code == 202, challenge.json
    return client.post(SECOND, json={"challenge": challenge.json["challenge"], "code": code})


def next_step_code(totp: pyotp.TOTP) -> str:
    """A valid code of the next time step (accepted: the window is one step)."""
    import time

    return totp.at(time.time() + 30)


def event_types(client: FlaskClient, access: str) -> list[str]:
    """The caller's own events, newest first."""
    response = client.get("/api/v1/users/me/events?limit=100", headers=bearer(access))
    return [item["event_type"] for item in response.json["items"]]


def test_enrolment_confirmation_and_sign_in(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    tokens = login(user.email)
    other = login(user.email)
    access = tokens["access_token"]
    factor_id, totp, codes = enrol(client, access)
    # Enrolling ends the other sessions; this one now counts as having passed the factor.
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(other["access_token"])), 401, "token_revoked"
    )
    listed = client.get(FACTORS, headers=bearer(access)).json
    assert listed["recovery_codes_left"] == 10
    assert [(f["id"], f["active"], f["label"]) for f in listed["factors"]] == [
        (factor_id, True, "phone")
    ]
    assert "secret" not in str(listed)
    with app.app_context():
        stored = db.session.scalars(select(TotpFactor)).one()
        assert totp.secret not in stored.secret_encrypted
        hashes = db.session.scalars(select(RecoveryCode.code_hash)).all()
        assert not set(codes) & set(hashes)
    signed_in = sign_in(client, user.email, next_step_code(totp))
    assert signed_in.status_code == 200
    types = event_types(client, signed_in.json["access_token"])
    for expected in (
        "totp.enrolment_started",
        "totp.enabled",
        "recovery_codes.generated",
        "login.second_factor_required",
        "login.succeeded",
    ):
        assert expected in types


def test_a_pending_factor_is_no_factor_and_a_wrong_code_does_not_confirm(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    started = client.post(
        f"{FACTORS}/totp", json={"password": PASSWORD}, headers=bearer(access)
    ).json
    wrong = client.post(
        f"{FACTORS}/totp/{started['id']}/confirm", json={"code": "000000"}, headers=bearer(access)
    )
    assert_problem(wrong, 401, "invalid_code")
    assert login(user.email)["access_token"]  # still 200: nothing active
    assert client.get(FACTORS, headers=bearer(access)).json["factors"][0]["active"] is False


def test_a_token_alone_cannot_add_a_factor(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    """Whoever adds a factor could lock the owner out: the password is asked for."""
    user = make_user()
    access = login(user.email)["access_token"]
    missing = client.post(f"{FACTORS}/totp", json={}, headers=bearer(access))
    assert_problem(missing, 422, "validation_error")
    wrong = client.post(f"{FACTORS}/totp", json={"password": "guess guess"}, headers=bearer(access))
    assert_problem(wrong, 401, "invalid_credentials")
    assert client.get(FACTORS, headers=bearer(access)).json["factors"] == []


def test_only_one_authenticator_app(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    enrol(client, access)
    again = client.post(f"{FACTORS}/totp", json={"password": PASSWORD}, headers=bearer(access))
    assert_problem(again, 409, "conflict")


def test_a_recovery_code_signs_in_once(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    _, _, codes = enrol(client, login(user.email)["access_token"])
    used = sign_in(client, user.email, codes[0].upper().replace("-", " "))
    assert used.status_code == 200, used.json
    access = used.json["access_token"]
    import jwt

    assert jwt.decode(access, options={"verify_signature": False})["amr"] == ["pwd", "recovery"]
    assert client.get(FACTORS, headers=bearer(access)).json["recovery_codes_left"] == 9
    assert_problem(sign_in(client, user.email, codes[0]), 401, "invalid_code")
    assert "recovery_codes.used" in event_types(client, access)


def test_regenerating_recovery_codes_voids_the_old_set(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    _, _, old = enrol(client, access)
    fresh = client.post(f"{FACTORS}/recovery-codes", headers=bearer(access))
    assert fresh.status_code == 200
    new = fresh.json["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert_problem(sign_in(client, user.email, old[1]), 401, "invalid_code")
    assert sign_in(client, user.email, new[1]).status_code == 200


def test_regenerating_needs_a_step_up(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    enrol(client, access)
    from datetime import timedelta

    from project.models import Session
    from project.models.types import utcnow

    with app.app_context():
        for session in db.session.scalars(select(Session)):
            session.auth_time = utcnow() - timedelta(hours=1)
        db.session.commit()
    refused = client.post(f"{FACTORS}/recovery-codes", headers=bearer(access))
    assert_problem(refused, 403, "step_up_required")


def test_removing_an_active_factor(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    factor_id, totp, _ = enrol(client, access)
    second = sign_in(client, user.email, next_step_code(totp)).json
    url = f"{FACTORS}/totp/{factor_id}"
    missing = client.delete(url, json={}, headers=bearer(access))
    assert_problem(missing, 422, "validation_error")
    wrong = client.delete(url, json={"password": "not it at all"}, headers=bearer(access))
    assert_problem(wrong, 401, "invalid_credentials")
    removed = client.delete(url, json={"password": PASSWORD}, headers=bearer(access))
    assert removed.status_code == 204
    # The other session ended; the recovery codes went with the last factor.
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(second["access_token"])), 401, "token_revoked"
    )
    assert client.get(FACTORS, headers=bearer(access)).json == {
        "factors": [],
        "recovery_codes_left": 0,
    }
    assert login(user.email)["access_token"]
    assert "totp.removed" in event_types(client, access)


def test_removing_with_a_code_needs_a_fresh_one(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    factor_id, totp, _ = enrol(client, access)
    url = f"{FACTORS}/totp/{factor_id}"
    # The confirmation spent this step's code.
    replay = client.delete(url, json={"code": totp.now()}, headers=bearer(access))
    assert_problem(replay, 401, "invalid_code")
    removed = client.delete(url, json={"code": next_step_code(totp)}, headers=bearer(access))
    assert removed.status_code == 204


def test_wrong_codes_are_throttled_per_account(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    user = make_user()
    _, totp, _ = enrol(client, login(user.email)["access_token"])
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    answers = []
    # Five wrong codes in a row, across challenges, then the account waits, right code or not.
    for attempt in range(3):
        challenge = client.post(LOGIN, json={"email": user.email, "password": PASSWORD}).json
        for code in (wrong, wrong if attempt < 2 else next_step_code(totp)):
            answers.append(
                client.post(SECOND, json={"challenge": challenge["challenge"], "code": code})
            )
    assert [answer.status_code for answer in answers] == [401] * 5 + [429]
    body = assert_problem(answers[-1], 429, "second_factor_throttled")
    assert int(answers[-1].headers["Retry-After"]) >= 1 and body["retry_after"] >= 1


def test_an_admin_removes_a_users_factors(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., Any],
    admin_headers: dict[str, str],
    admin: User,
    inbox: Any,
) -> None:
    user = make_user()
    access = login(user.email)["access_token"]
    enrol(client, access)
    removed = client.delete(f"/api/v1/users/{user.id}/factors", headers=admin_headers)
    assert removed.status_code == 204
    run_jobs(app)
    assert inbox.wait_for(user.email, "sign-in factors were removed")
    assert_problem(client.get("/api/v1/users/me", headers=bearer(access)), 401, "token_revoked")
    fresh = login(user.email)["access_token"]
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == "factors.removed_by_admin")
        ).one()
        assert event.actor_id == admin.id and event.user_id == user.id
    assert "factors.removed_by_admin" in event_types(client, fresh)
    unknown = client.delete(
        "/api/v1/users/00000000-0000-0000-0000-000000000000/factors", headers=admin_headers
    )
    assert_problem(unknown, 404, "not_found")


@pytest.fixture
def strict_admin_app(app_factory: Callable[..., Flask]) -> Flask:
    """An app whose admin routes need a second factor."""
    return app_factory(ADMIN_REQUIRE_SECOND_FACTOR=True)


def test_admin_routes_can_require_a_second_factor(strict_admin_app: Flask) -> None:
    from project.models import Role
    from project.services import auth as auth_service

    client = strict_admin_app.test_client()
    with strict_admin_app.app_context():
        auth_service.create_user(
            email="boss@example.com", password=PASSWORD, full_name=None, role=Role.ADMIN
        )
        db.session.commit()
    password_only = client.post(LOGIN, json={"email": "boss@example.com", "password": PASSWORD})
    access = password_only.json["access_token"]
    assert_problem(
        client.get("/api/v1/users", headers=bearer(access)), 403, "second_factor_required"
    )
    _, totp, _ = enrol(client, access)
    signed_in = sign_in(client, "boss@example.com", next_step_code(totp))
    assert (
        client.get("/api/v1/users", headers=bearer(signed_in.json["access_token"])).status_code
        == 200
    )


def test_secrets_are_encrypted_with_the_first_key_and_read_with_any(app: Flask) -> None:
    from project.core.secret_box import InvalidToken, SecretBox

    old = SecretBox(["o" * 32])
    sealed = old.seal("JBSWY3DPEHPK3PXP")
    rotated = SecretBox(["n" * 32, "o" * 32])
    assert rotated.open(sealed) == "JBSWY3DPEHPK3PXP"
    assert SecretBox(["n" * 32]).open(rotated.reseal(sealed)) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(InvalidToken):
        SecretBox(["n" * 32]).open(sealed)
    assert make_settings().MFA_ENCRYPTION_KEYS


def test_flask_factors_reseal_rotates_the_encryption_key(
    app_factory: Callable[..., Flask],
) -> None:
    old_key, new_key = "o" * 40, "n" * 40
    before = app_factory(MFA_ENCRYPTION_KEYS=(old_key,))
    client = before.test_client()
    client.post("/api/v1/auth/register", json={"email": "rot@example.com", "password": PASSWORD})
    access = client.post(LOGIN, json={"email": "rot@example.com", "password": PASSWORD}).json[
        "access_token"
    ]
    _, totp, _ = enrol(client, access)
    rotated = app_factory(MFA_ENCRYPTION_KEYS=(new_key, old_key))
    result = rotated.test_cli_runner().invoke(args=["factors", "reseal"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 authenticator app secrets" in result.output
    # Only the new key is left, and sign-in with the app still works.
    after = app_factory(MFA_ENCRYPTION_KEYS=(new_key,)).test_client()
    assert sign_in(after, "rot@example.com", next_step_code(totp)).status_code == 200
    stale = app_factory(MFA_ENCRYPTION_KEYS=(old_key,))
    with stale.app_context():
        from project.core.secret_box import InvalidToken
        from project.services.factors import secret_box

        sealed = db.session.scalars(select(TotpFactor.secret_encrypted)).one()
        with pytest.raises(InvalidToken):
            secret_box().open(sealed)
