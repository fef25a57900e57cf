"""Browser frontends: tokens in HttpOnly cookies with CSRF double submit, and security headers."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from project.models import User
from tests.conftest import PASSWORD, assert_problem, bearer

AppFactory = Callable[..., Flask]


def cookie_login(client: FlaskClient, email: str) -> dict[str, str]:
    """Log in in cookie mode and return the JSON body (CSRF tokens)."""
    response = client.post(
        "/api/v1/auth/login",
        query_string={"mode": "cookie"},
        json={"email": email, "password": PASSWORD},
    )
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def test_cookie_login_sets_httponly_cookies_and_returns_no_tokens(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    response = client.post(
        "/api/v1/auth/login",
        query_string={"mode": "cookie"},
        json={"email": user.email, "password": PASSWORD},
    )
    body = response.json
    assert body["token_type"] == "Cookie" and body["expires_in"] == 900
    assert "access_token" not in body and "refresh_token" not in body
    assert body["csrf_token"] and body["refresh_csrf_token"]
    cookies = {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}
    access = cookies["access_token_cookie"]
    assert (
        "HttpOnly" in access
        and "Secure" in access
        and "SameSite=Lax" in access
        and "Path=/;" in access
    )
    assert "Max-Age=2592000" in access  # outlives the token: expiry reads as token_expired
    refresh = cookies["refresh_token_cookie"]
    assert "HttpOnly" in refresh and "Path=/api/v1/auth/refresh" in refresh
    assert "HttpOnly" not in cookies["csrf_access_token"]  # readable by same-site scripts
    assert response.headers["Cache-Control"] == "no-store"


def test_cookie_session_needs_the_csrf_header_on_unsafe_requests(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    body = cookie_login(client, user.email)
    assert client.get("/api/v1/users/me").json["id"] == str(user.id)
    missing = client.patch("/api/v1/users/me", json={"full_name": "Eve"})
    assert_problem(missing, 403, "csrf_failed")
    wrong = client.patch(
        "/api/v1/users/me", json={"full_name": "Eve"}, headers={"X-CSRF-TOKEN": "guess"}
    )
    assert_problem(wrong, 403, "csrf_failed")
    ok = client.patch(
        "/api/v1/users/me", json={"full_name": "Ann"}, headers={"X-CSRF-TOKEN": body["csrf_token"]}
    )
    assert ok.status_code == 200 and ok.json["full_name"] == "Ann"


def test_cookie_refresh_rotates_and_logout_clears(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    body = cookie_login(client, user.email)
    assert_problem(client.post("/api/v1/auth/refresh"), 403, "csrf_failed")
    old_refresh = client.get_cookie("refresh_token_cookie", path="/api/v1/auth/refresh")
    assert old_refresh is not None
    renewed = client.post(
        "/api/v1/auth/refresh", headers={"X-CSRF-TOKEN": body["refresh_csrf_token"]}
    )
    assert renewed.status_code == 200 and renewed.json["token_type"] == "Cookie"
    new_refresh = client.get_cookie("refresh_token_cookie", path="/api/v1/auth/refresh")
    assert new_refresh is not None and new_refresh.value != old_refresh.value
    # The rotated cookie value is dead: replaying it ends the session.
    replay = client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {old_refresh.value}"}
    )
    assert_problem(replay, 401, "refresh_token_reused")


def test_cookie_logout_clears_the_cookies(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    body = cookie_login(client, user.email)
    response = client.post("/api/v1/auth/logout", headers={"X-CSRF-TOKEN": body["csrf_token"]})
    assert response.status_code == 204
    cleared = [
        header for header in response.headers.getlist("Set-Cookie") if "token_cookie=;" in header
    ]
    assert len(cleared) == 2
    assert client.get_cookie("access_token_cookie") is None
    assert_problem(client.get("/api/v1/users/me"), 401, "authorization_required")


def test_bearer_mode_keeps_working_beside_cookies(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    tokens = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    ).json
    assert not client.get_cookie("access_token_cookie")
    response = client.patch(
        "/api/v1/users/me", json={"full_name": "Bo"}, headers=bearer(tokens["access_token"])
    )
    assert response.status_code == 200  # no CSRF header needed: a header token is not ambient


def test_login_mode_is_validated(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/login",
        query_string={"mode": "smoke-signal"},
        json={"email": "a@b.co", "password": "x" * 8},
    )
    assert "mode" in assert_problem(response, 422, "validation_error")["errors"]


def test_cors_allows_credentials_and_the_csrf_header(app_factory: AppFactory) -> None:
    client = app_factory(CORS_ORIGINS=["https://app.example.com"]).test_client()
    preflight = client.options(
        "/api/v1/users/me",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "X-CSRF-TOKEN, Content-Type",
        },
    )
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "x-csrf-token" in preflight.headers["Access-Control-Allow-Headers"].lower()
    foreign = client.options(
        "/api/v1/users/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"},
    )
    assert "Access-Control-Allow-Credentials" not in foreign.headers


def test_security_headers(app_factory: AppFactory, client: FlaskClient) -> None:
    login = client.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": "whatever1"}
    )
    assert login.headers["Cache-Control"] == "no-store"
    assert login.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in login.headers
    production = app_factory(HSTS=True).test_client()
    assert (
        production.get("/health/live").headers["Strict-Transport-Security"].startswith("max-age=")
    )


def test_a_reloaded_page_can_read_its_csrf_tokens_again(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    assert client.get("/api/v1/auth/csrf").json == {"csrf_token": None, "refresh_csrf_token": None}
    body = cookie_login(client, make_user().email)
    again = client.get("/api/v1/auth/csrf").json
    assert again == {
        "csrf_token": body["csrf_token"],
        "refresh_csrf_token": body["refresh_csrf_token"],
    }
    renewed = client.post(
        "/api/v1/auth/refresh", headers={"X-CSRF-TOKEN": again["refresh_csrf_token"]}
    )
    assert renewed.status_code == 200


def test_logging_out_the_other_sessions_keeps_this_browser_signed_in(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    body = cookie_login(client, user.email)
    response = client.post(
        "/api/v1/auth/logout",
        query_string={"scope": "others"},
        headers={"X-CSRF-TOKEN": body["csrf_token"]},
    )
    assert response.status_code == 204
    assert not any("token_cookie=;" in h for h in response.headers.getlist("Set-Cookie"))
    assert client.get("/api/v1/users/me").status_code == 200


def test_an_expired_cookie_token_reads_as_token_expired(app_factory: AppFactory) -> None:
    # Long enough that a slow, loaded machine still sets the cookies before it expires.
    app = app_factory(ACCESS_TOKEN_TTL=3)
    app.config["JWT_DECODE_LEEWAY"] = 0  # a Flask-JWT-Extended key, not a Warden setting
    client = app.test_client()
    client.post(
        "/api/v1/auth/register", json={"email": "cookie.expiry@example.com", "password": PASSWORD}
    )
    response = client.post(
        "/api/v1/auth/login",
        query_string={"mode": "cookie"},
        json={"email": "cookie.expiry@example.com", "password": PASSWORD},
    )
    assert response.status_code == 200
    time.sleep(4.1)
    assert_problem(client.get("/api/v1/users/me"), 401, "token_expired")
