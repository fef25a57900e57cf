"""Passwordless sign-in by a mailed link or code (EMAIL_SIGNIN), over real SMTP."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from project.models import User
from tests.conftest import assert_problem, bearer, run_jobs
from tests.mailbox import Mailbox
from tests.test_second_factor import add_totp, claims

ASK = "/api/v1/auth/email-signin"
REDEEM = "/api/v1/auth/email-signin/redeem"
CODE = re.compile(r"enter this code: (\d{8})")


@pytest.fixture
def mail_app(app_factory: Callable[..., Flask]) -> Flask:
    """An app with emailed sign-in on."""
    return app_factory(EMAIL_SIGNIN=True)


def user_in(application: Flask, email: str) -> User:
    from project.extensions import db
    from project.services import auth as auth_service

    with application.app_context():
        user = auth_service.create_user(email=email, password="correct horse battery staple",
                                        full_name=None)  # fmt: skip
        db.session.commit()
        db.session.expunge(user)
        return user


def ask(application: Flask, client: FlaskClient, email: str) -> None:
    response = client.post(ASK, json={"email": email})
    assert response.status_code == 202
    assert response.json == {
        "detail": "If the address has an account, a sign-in mail is on its way."
    }
    run_jobs(application)


def test_the_link_signs_in_once_and_verifies_the_address(mail_app: Flask, inbox: Mailbox) -> None:
    user_in(mail_app, "link@example.com")
    client = mail_app.test_client()
    ask(mail_app, client, "link@example.com")
    mail = inbox.wait_for("link@example.com", "Your sign-in code")
    assert "/email-signin?token=" in mail.text
    first = client.post(REDEEM, json={"token": mail.token})
    assert first.status_code == 200, first.json
    assert claims(first.json["access_token"])["amr"] == ["email"]
    me = client.get("/api/v1/users/me", headers=bearer(first.json["access_token"])).json
    assert me["email_verified"] is True
    assert_problem(client.post(REDEEM, json={"token": mail.token}), 400, "invalid_token")
    events = client.get("/api/v1/users/me/events", headers=bearer(first.json["access_token"]))
    kinds = [item["event_type"] for item in events.json["items"]]
    assert {"email_signin.sent", "login.succeeded"} <= set(kinds)


def test_the_code_signs_in_once(mail_app: Flask, inbox: Mailbox) -> None:
    user_in(mail_app, "code@example.com")
    client = mail_app.test_client()
    ask(mail_app, client, "code@example.com")
    code = CODE.search(inbox.wait_for("code@example.com", "Your sign-in code").text).group(1)
    answer = client.post(REDEEM, json={"email": "Code@Example.com", "code": code})
    assert answer.status_code == 200, answer.json
    again = client.post(REDEEM, json={"email": "code@example.com", "code": code})
    assert_problem(again, 400, "invalid_token")


def test_five_wrong_codes_void_the_mail(mail_app: Flask, inbox: Mailbox) -> None:
    user_in(mail_app, "guess@example.com")
    client = mail_app.test_client()
    ask(mail_app, client, "guess@example.com")
    code = CODE.search(inbox.wait_for("guess@example.com", "Your sign-in code").text).group(1)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(5):
        response = client.post(REDEEM, json={"email": "guess@example.com", "code": wrong})
        assert_problem(response, 400, "invalid_token")
    response = client.post(REDEEM, json={"email": "guess@example.com", "code": code})
    assert_problem(response, 400, "invalid_token")


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    mail_app: Flask, inbox: Mailbox
) -> None:
    ask(mail_app, mail_app.test_client(), "nobody@example.com")
    assert inbox.messages("nobody@example.com") == []


def test_mails_per_address_follow_the_budget(
    app_factory: Callable[..., Flask], inbox: Mailbox
) -> None:
    application = app_factory(EMAIL_SIGNIN=True, MAIL_BUDGET="2 per hour")
    user_in(application, "budget@example.com")
    client = application.test_client()
    for _ in range(4):
        ask(application, client, "budget@example.com")
    inbox.wait_for("budget@example.com", "Your sign-in code")
    assert len(inbox.messages("budget@example.com")) == 2


def test_requests_per_client_address_are_limited(app_factory: Callable[..., Flask]) -> None:
    application = app_factory(EMAIL_SIGNIN=True, RATELIMIT_EMAIL="2 per minute")
    client = application.test_client()
    for _ in range(2):
        assert client.post(ASK, json={"email": "a@example.com"}).status_code == 202
    assert_problem(client.post(ASK, json={"email": "b@example.com"}), 429, "rate_limited")


def test_the_link_still_asks_for_the_second_factor(mail_app: Flask, inbox: Mailbox) -> None:
    user = user_in(mail_app, "factor@example.com")
    totp = add_totp(mail_app, user)
    client = mail_app.test_client()
    ask(mail_app, client, "factor@example.com")
    token = inbox.wait_for("factor@example.com", "Your sign-in code").token
    response = client.post(REDEEM, json={"token": token})
    assert response.status_code == 202, response.json
    answered = client.post(
        "/api/v1/auth/login/second-factor",
        json={"challenge": response.json["challenge"], "code": totp.now()},
    )
    assert answered.status_code == 200
    assert claims(answered.json["access_token"])["amr"] == ["email", "otp"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "x@example.com"},
        {"code": "12345678"},
        {"email": "x@example.com", "code": "12ab"},
    ],
)
def test_incomplete_redeems_are_refused(mail_app: Flask, body: dict[str, str]) -> None:
    response = mail_app.test_client().post(REDEEM, json=body)
    assert_problem(response, 422, "validation_error")


def test_off_by_default(app_factory: Callable[..., Flask]) -> None:
    client = app_factory().test_client()
    assert client.post(ASK, json={"email": "a@example.com"}).status_code == 404
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/auth/login" in paths
    assert not any("email-signin" in path for path in paths)


def test_a_deactivated_account_gets_no_mail(mail_app: Flask, inbox: Mailbox) -> None:
    from project.extensions import db

    user = user_in(mail_app, "gone@example.com")
    with mail_app.app_context():
        db.session.get(User, user.id).is_active = False  # type: ignore[union-attr]
        db.session.commit()
    ask(mail_app, mail_app.test_client(), "gone@example.com")
    assert inbox.messages("gone@example.com") == []
