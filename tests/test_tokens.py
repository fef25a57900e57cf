"""JWT claims and verification."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from project.core.tokens import issue_token_pair
from project.extensions import redis_client
from project.models import User
from tests.conftest import assert_problem, bearer, make_settings, register_and_login


def _claims(token: str, app: Flask) -> dict[str, Any]:
    return pyjwt.decode(
        token,
        app.config["JWT_SECRET_KEY"],
        algorithms=["HS256"],
        audience="warden",
        issuer="warden",
    )


def test_token_claims(
    app: Flask, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    user = make_user()
    pair = login(user.email)
    access, refresh = _claims(pair["access_token"], app), _claims(pair["refresh_token"], app)
    assert access["sub"] == refresh["sub"] == str(user.id)
    assert access["sid"] == refresh["sid"]
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["exp"] - access["iat"] == 900
    assert refresh["exp"] - refresh["iat"] == 2_592_000
    assert "role" not in access and "email" not in access


def test_expired_access_token(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    user = make_user()
    sid = _claims(login(user.email)["access_token"], app)["sid"]
    with app.app_context():
        pair = issue_token_pair(
            user_id=user.id,
            session_id=uuid.UUID(sid),
            refresh_jti="x",
            token_version=0,
            access_ttl=-60,
            refresh_ttl=-60,
        )
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(pair.access_token)), 401, "token_expired"
    )
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(pair.refresh_token)),
        401,
        "token_expired",
    )


def test_forged_tokens_are_refused(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    user = make_user()
    good = login(user.email)["access_token"]
    claims = _claims(good, app)
    wrong_key = pyjwt.encode(claims, "another-secret-of-at-least-32-bytes!!", algorithm="HS256")
    wrong_aud = pyjwt.encode(
        {**claims, "aud": "other"}, app.config["JWT_SECRET_KEY"], algorithm="HS256"
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    alg_none = f"{header.decode()}.{body.decode()}."
    head, _payload, signature = good.split(".")
    tampered_claims = {**claims, "sub": str(uuid.uuid4())}
    tampered = ".".join(
        [
            head,
            base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).rstrip(b"=").decode(),
            signature,
        ]
    )
    for token in (wrong_key, wrong_aud, alg_none, tampered):
        assert_problem(client.get("/api/v1/users/me", headers=bearer(token)), 401, "invalid_token")


def test_a_token_for_another_users_session_is_refused(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    alice, bob = make_user(), make_user()
    alice_sid = _claims(login(alice.email)["access_token"], app)["sid"]
    with app.app_context():
        pair = issue_token_pair(
            user_id=bob.id,
            session_id=uuid.UUID(alice_sid),
            refresh_jti="x",
            token_version=0,
            access_ttl=60,
            refresh_ttl=60,
        )
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(pair.access_token)), 401, "token_revoked"
    )


def test_the_bearer_scheme_is_case_insensitive(
    client: FlaskClient, user_headers: dict[str, str]
) -> None:
    token = user_headers["Authorization"].split()[1]
    for scheme in ("bearer", "BEARER", "bEaReR"):
        response = client.get("/api/v1/users/me", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200, (scheme, response.json)
    # Without a token, either case is the same malformed header.
    lower = client.get("/api/v1/users/me", headers={"Authorization": "bearer"})
    upper = client.get("/api/v1/users/me", headers={"Authorization": "Bearer"})
    assert lower.json["code"] == upper.json["code"]
    # Another scheme is still no token at all.
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearerx {token}"})
    assert_problem(response, 401, "authorization_required")


def test_token_failures_carry_a_bearer_challenge(
    client: FlaskClient, user_headers: dict[str, str]
) -> None:
    missing = client.get("/api/v1/users/me")
    assert_problem(missing, 401, "authorization_required")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="warden"'
    garbage = client.get("/api/v1/users/me", headers=bearer("not.a.token"))
    assert_problem(garbage, 401, "invalid_token")
    assert garbage.headers["WWW-Authenticate"] == 'Bearer realm="warden", error="invalid_token"'
    client.post("/api/v1/auth/logout", headers=user_headers)
    revoked = client.get("/api/v1/users/me", headers=user_headers)
    assert_problem(revoked, 401, "token_revoked")
    assert revoked.headers["WWW-Authenticate"] == 'Bearer realm="warden", error="invalid_token"'
    # A wrong password is not a token problem: no challenge.
    login = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong one 12"}
    )
    assert_problem(login, 401, "invalid_credentials")
    assert "WWW-Authenticate" not in login.headers


@pytest.mark.parametrize(
    ("jti", "code"),
    [("a\x00", "token_revoked"), ("j" * 5000, "token_revoked"), (7, "invalid_token")],
)
def test_a_signed_refresh_token_with_an_odd_jti_is_refused(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
    jti: object,
    code: str,
) -> None:
    # Only a holder of the signing key can make one: still a 401, never a 500.
    claims = _claims(login(make_user().email)["refresh_token"], app)
    forged = pyjwt.encode({**claims, "jti": jti}, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = client.post("/api/v1/auth/refresh", headers=bearer(forged))
    assert_problem(response, 401, code)  # PyJWT itself refuses a jti that is no string


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
@pytest.mark.parametrize("expiry", ["absent", "numeric string"])
def test_a_signed_token_without_a_numeric_expiry_is_refused(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
    kind: str,
    expiry: str,
) -> None:
    # Signed with the real key: only the missing expiry can make it fail.
    claims = _claims(login(make_user().email)[kind], app)
    changed = {k: v for k, v in claims.items() if k != "exp"}
    if expiry == "numeric string":
        changed["exp"] = str(claims["exp"])
    key = app.config["JWT_SECRET_KEY"]
    control, odd = (pyjwt.encode(c, key, algorithm="HS256") for c in (claims, changed))

    def use(token: str) -> Any:
        if kind == "access_token":
            return client.get("/api/v1/users/me", headers=bearer(token))
        return client.post("/api/v1/auth/refresh", headers=bearer(token))

    for _ in range(2):  # the second use would come from the verified-token cache
        assert_problem(use(odd), 401, "invalid_token")
    assert use(control).status_code == 200


REDIS_BACKENDS = [
    pytest.param(None, id="database"),
    pytest.param(
        make_settings().REDIS_URL,
        id="redis",
        marks=pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL"),
    ),
]


@pytest.mark.parametrize("redis_url", REDIS_BACKENDS)
def test_a_live_session_under_another_users_subject_is_refused_on_every_path(
    app_factory: Callable[..., Flask], redis_url: str | None
) -> None:
    application = app_factory(REDIS_URL=redis_url)
    client = application.test_client()
    alice = register_and_login(client, "alice@example.com")
    bob = register_and_login(client, "bob@example.com")
    # Both warm: alice's session marker and bob's cached copy are in Redis when it is there.
    for tokens in (alice, bob):
        me = client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200
    alice_claims = _claims(alice["access_token"], application)
    bob_id = _claims(bob["access_token"], application)["sub"]
    with application.app_context():
        if redis_url:
            marker = redis_client.client.get(f"warden:session:{alice_claims['sid']}")
            assert marker == alice_claims["sub"]
        swapped = issue_token_pair(
            user_id=uuid.UUID(bob_id),
            session_id=uuid.UUID(alice_claims["sid"]),
            refresh_jti="x",
            token_version=0,
            access_ttl=60,
            refresh_ttl=60,
        )
    for _ in range(2):
        refused = client.get("/api/v1/users/me", headers=bearer(swapped.access_token))
        assert_problem(refused, 401, "token_revoked")
    # Alice's own token still works: the refusal ended nothing.
    assert client.get("/api/v1/users/me", headers=bearer(alice["access_token"])).status_code == 200
