"""Registration, login, refresh rotation and logout through the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bcrypt
import pytest
from flask.testing import FlaskClient

from project.models import User
from tests.conftest import PASSWORD, assert_problem, bearer

USER_FIELDS = {
    "id",
    "email",
    "full_name",
    "role",
    "is_active",
    "email_verified",
    "created_at",
    "updated_at",
}


def test_register_returns_the_user_without_secrets(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "  New.User@Example.COM ", "password": PASSWORD, "full_name": " Ann "},
    )
    assert response.status_code == 201
    body = response.json
    assert set(body) == USER_FIELDS
    assert body["email"] == "New.User@example.com"  # the domain lower-cased
    assert body["full_name"] == "Ann"
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert body["email_verified"] is False
    assert body["created_at"].endswith("+00:00")
    assert PASSWORD not in response.get_data(as_text=True)
    assert "$2b$" not in response.get_data(as_text=True)


def test_register_rejects_an_email_taken_in_any_case(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    make_user(email="taken@example.com")
    response = client.post(
        "/api/v1/auth/register", json={"email": " TAKEN@example.com", "password": PASSWORD}
    )
    assert_problem(response, 409, "email_taken")


def test_an_address_is_stored_normalized_and_matched_in_any_case(client: FlaskClient) -> None:
    created = client.post(
        "/api/v1/auth/register", json={"email": "Bob@Example.COM", "password": PASSWORD}
    )
    assert created.status_code == 201, created.json
    assert created.json["email"] == "Bob@example.com"
    for email in ("bob@EXAMPLE.com", "BOB@example.com"):
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, (email, login.json)
    again = client.post(
        "/api/v1/auth/register", json={"email": "bOB@example.com", "password": PASSWORD}
    )
    assert_problem(again, 409, "email_taken")


def test_an_internationalized_domain_signs_in_in_either_spelling(client: FlaskClient) -> None:
    created = client.post(
        "/api/v1/auth/register", json={"email": "Ann@EXÄMPLE.com", "password": PASSWORD}
    )
    assert created.json["email"] == "Ann@exämple.com"
    for email in ("ann@exämple.com", "ANN@XN--exmple-cua.com"):
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, (email, login.json)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": PASSWORD}, "email"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": "short77"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "role": "admin"}, "role"),
        ({"email": "a@example.com", "password": PASSWORD, "is_active": False}, "is_active"),
        ({"email": "a@example.com", "password": PASSWORD, "full_name": "x" * 201}, "full_name"),
        ({"email": 42, "password": PASSWORD}, "email"),
    ],
)
def test_register_validation(client: FlaskClient, payload: dict[str, Any], field: str) -> None:
    body = assert_problem(
        client.post("/api/v1/auth/register", json=payload), 422, "validation_error"
    )
    assert field in body["errors"]


def test_password_limits_are_inclusive(client: FlaskClient) -> None:
    for index, password in enumerate(["q7#Kx!2m", "é" * 128]):
        response = client.post(
            "/api/v1/auth/register",
            json={"email": f"edge{index}@example.com", "password": password},
        )
        assert response.status_code == 201


def test_login_returns_a_bearer_token_pair(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(email="Login@Example.com")
    response = client.post(
        "/api/v1/auth/login", json={"email": " login@EXAMPLE.com ", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] != body["refresh_token"]
    me = client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert me.json["id"] == str(user.id)


def test_wrong_password_and_unknown_email_look_the_same(
    client: FlaskClient, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    checks: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    wrong = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "wrong-password"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"}
    )
    first = assert_problem(wrong, 401, "invalid_credentials")
    second = assert_problem(unknown, 401, "invalid_credentials")
    assert first["detail"] == second["detail"]
    # Both paths ran exactly one bcrypt verification at the same cost.
    assert len(checks) == 2
    assert checks[0][:7] == checks[1][:7]


def test_passwords_sharing_72_bytes_are_different(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    prefix = "a" * 72
    user = make_user(password=prefix + "first")
    response = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": prefix + "second"}
    )
    assert_problem(response, 401, "invalid_credentials")
    ok = client.post("/api/v1/auth/login", json={"email": user.email, "password": prefix + "first"})
    assert ok.status_code == 200


def test_deactivated_user_cannot_log_in(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(is_active=False)
    response = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert_problem(response, 403, "account_disabled")
    wrong = client.post("/api/v1/auth/login", json={"email": user.email, "password": "nope-nope"})
    assert_problem(wrong, 401, "invalid_credentials")


def test_refresh_rotates_and_the_old_token_ends_the_session(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    user = make_user()
    first = login(user.email)
    rotated = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert rotated.status_code == 200
    second = rotated.json
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/users/me", headers=bearer(second["access_token"])).status_code == 200

    replay = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert_problem(replay, 401, "refresh_token_reused")
    # Reuse is treated as theft: every token of the session family stops working.
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])),
        401,
        "token_revoked",
    )
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(second["access_token"])), 401, "token_revoked"
    )


def test_tokens_of_the_wrong_type_are_refused(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    tokens = login(make_user().email)
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(tokens["refresh_token"])),
        401,
        "invalid_token",
    )
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["access_token"])),
        401,
        "invalid_token",
    )


def test_logout_ends_only_that_session(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    user = make_user()
    phone, laptop = login(user.email), login(user.email)
    response = client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"]))
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(phone["refresh_token"])),
        401,
        "token_revoked",
    )
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(phone["access_token"])), 401, "token_revoked"
    )
    assert client.get("/api/v1/users/me", headers=bearer(laptop["access_token"])).status_code == 200
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(laptop["refresh_token"])).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "authorization_required"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "authorization_required"),
        ({"Authorization": "Bearer"}, "invalid_token"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid_token"),
        ({"Authorization": "Bearer " + "a" * 5000}, "invalid_token"),
    ],
)
def test_missing_or_malformed_authorization(
    client: FlaskClient, headers: dict[str, str], code: str
) -> None:
    assert_problem(client.get("/api/v1/users/me", headers=headers), 401, code)
