"""Sign-in with identity providers: a real OpenID provider (oidc-provider on loopback),
GitHub and a shaped OpenID provider played by a stand-in, the account rules, the linked
identities, and the attacks on the flow."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from config import oidc_providers
from project.extensions import db
from project.models import User
from project.services import auth as auth_service
from tests.conftest import PASSWORD, assert_problem, bearer
from tests.providers import OidcProvider, StandIn, node_missing, sign_in_at_provider, stand_in

CALLBACK = "http://localhost/api/v1/auth/providers/{}/callback"
ACCOUNTS = {
    "ada": {"email": "ada@example.org", "email_verified": True, "name": "Ada Lovelace"},
    "grace": {"email": "grace@example.org", "email_verified": True, "name": "Grace"},
    "mallory": {"email": "victim@example.org", "email_verified": False},
    "nomail": {"email_verified": False},
}


@pytest.fixture(scope="module")
def op() -> Iterator[OidcProvider]:
    """oidc-provider for this module."""
    if reason := node_missing():
        pytest.skip(reason)
    server = OidcProvider(
        redirect_uris=[CALLBACK.format("local"), CALLBACK.format("other")], accounts=ACCOUNTS
    )
    yield server
    server.stop()


def providers_setting(*entries: dict[str, str]) -> Any:
    """OIDC_PROVIDERS as the settings parser reads it."""
    return oidc_providers(json.dumps(list(entries)))


@pytest.fixture
def fed_app(op: OidcProvider, app_factory: Callable[..., Flask]) -> Flask:
    """An app with the local provider configured."""
    return app_factory(OIDC_PROVIDERS=providers_setting(op.setting()))


def start(client: FlaskClient, provider: str = "local", **query: str) -> str:
    """Start a sign-in; return the provider URL the browser is sent to."""
    response = client.get(f"/api/v1/auth/providers/{provider}/authorize", query_string=query)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def callback_path(url: str) -> str:
    """The path and query of a callback URL, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def provider_callback(client: FlaskClient, login: str, provider: str = "local", **query: str):
    """Run the flow up to Warden's answer to the provider's redirect back."""
    url = start(client, provider, **query)
    back = sign_in_at_provider(requests.Session(), url, login)
    return client.get(callback_path(back))


def fragment(response: Any) -> dict[str, str]:
    """The fragment parameters of a redirect."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).fragment).items()}


def sign_in(client: FlaskClient, login: str, provider: str = "local") -> dict[str, Any]:
    """The whole flow: provider, callback, and the code traded for tokens."""
    code = fragment(provider_callback(client, login, provider))["code"]
    response = client.post("/api/v1/auth/providers/sign-in", json={"code": code})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def me(client: FlaskClient, tokens: dict[str, Any]) -> dict[str, Any]:
    response = client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    return response.json  # type: ignore[no-any-return]


def events(client: FlaskClient, tokens: dict[str, Any]) -> list[str]:
    response = client.get("/api/v1/users/me/events", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    return [item["event_type"] for item in response.json["items"]]


def add_user(application: Flask, email: str, *, verified: bool) -> None:
    with application.app_context():
        auth_service.create_user(
            email=email, password=PASSWORD, full_name=None, email_verified=verified
        )
        db.session.commit()


def test_a_new_verified_identity_creates_a_verified_account_without_password(
    fed_app: Flask,
) -> None:
    client = fed_app.test_client()
    tokens = sign_in(client, "ada")
    profile = me(client, tokens)
    assert profile["email"] == "ada@example.org"
    assert profile["email_verified"] is True
    assert {"user.registered", "identity.linked", "login.succeeded"} <= set(events(client, tokens))
    with fed_app.app_context():
        user = db.session.query(User).filter_by(email_normalized="ada@example.org").one()
        assert user.password_hash.startswith("!") and len(user.password_hash) > 20
    for password in ("", "!", user.password_hash, PASSWORD):
        refused = client.post(
            "/api/v1/auth/login", json={"email": "ada@example.org", "password": password}
        )
        assert refused.status_code in (401, 422)
    # The same identity signs in to the same account again.
    assert me(client, sign_in(client, "ada"))["id"] == profile["id"]


def test_a_verified_account_is_linked_when_the_provider_verified_the_address(
    fed_app: Flask,
) -> None:
    add_user(fed_app, "grace@example.org", verified=True)
    client = fed_app.test_client()
    tokens = sign_in(client, "grace")
    assert me(client, tokens)["email"] == "grace@example.org"
    listed = client.get("/api/v1/users/me/identities", headers=bearer(tokens["access_token"]))
    assert [item["provider"] for item in listed.json] == ["local"]


def test_an_unverified_account_is_not_linked_automatically(fed_app: Flask) -> None:
    add_user(fed_app, "grace@example.org", verified=False)
    response = provider_callback(fed_app.test_client(), "grace")
    assert_problem(response, 409, "identity_link_required")


def test_an_unverified_provider_email_matching_an_account_is_refused(fed_app: Flask) -> None:
    add_user(fed_app, "victim@example.org", verified=True)
    response = provider_callback(fed_app.test_client(), "mallory")
    assert_problem(response, 409, "identity_link_required")
    client = fed_app.test_client()
    login = client.post(
        "/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD}
    )
    assert "identity.refused" in events(client, login.json)


def test_no_account_is_created_without_a_verified_email(fed_app: Flask) -> None:
    assert_problem(provider_callback(fed_app.test_client(), "nomail"), 403,
                   "provider_email_unverified")  # fmt: skip
    assert_problem(provider_callback(fed_app.test_client(), "mallory"), 403,
                   "provider_email_unverified")  # fmt: skip


def test_the_sign_in_code_works_once(fed_app: Flask) -> None:
    client = fed_app.test_client()
    code = fragment(provider_callback(client, "ada"))["code"]
    first = client.post("/api/v1/auth/providers/sign-in", json={"code": code})
    assert first.status_code == 200
    again = client.post("/api/v1/auth/providers/sign-in", json={"code": code})
    assert_problem(again, 400, "invalid_token")


def test_cookie_mode_sets_the_cookies(fed_app: Flask) -> None:
    client = fed_app.test_client()
    code = fragment(provider_callback(client, "ada"))["code"]
    response = client.post("/api/v1/auth/providers/sign-in?mode=cookie", json={"code": code})
    assert response.status_code == 200
    assert response.json["token_type"] == "Cookie"
    assert client.get_cookie("access_token_cookie") is not None


def test_link_list_and_unlink(fed_app: Flask, op: OidcProvider) -> None:
    add_user(fed_app, "owner@example.com", verified=False)
    client = fed_app.test_client()
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
    ).json
    headers = bearer(tokens["access_token"])
    started = client.post("/api/v1/users/me/identities", json={"provider": "local"},
                          headers=headers)  # fmt: skip
    assert started.status_code == 200, started.json
    url = started.json["authorization_url"]
    response = client.get(callback_path(url))
    assert response.status_code == 302
    back = sign_in_at_provider(requests.Session(), response.headers["Location"], "mallory")
    assert fragment(client.get(callback_path(back))) == {"linked": "local"}
    listed = client.get("/api/v1/users/me/identities", headers=headers).json
    assert [(item["provider"], item["email"]) for item in listed] == [
        ("local", "victim@example.org")
    ]
    # The linked identity now signs in to this account, whatever its email says.
    assert me(client, sign_in(client, "mallory"))["email"] == "owner@example.com"
    removed = client.delete(f"/api/v1/users/me/identities/{listed[0]['id']}", headers=headers)
    assert removed.status_code == 204
    assert client.get("/api/v1/users/me/identities", headers=headers).json == []
    assert {"identity.linked", "identity.unlinked"} <= set(events(client, tokens))


def test_the_last_way_to_sign_in_cannot_be_unlinked(fed_app: Flask) -> None:
    client = fed_app.test_client()
    tokens = sign_in(client, "ada")
    headers = bearer(tokens["access_token"])
    (identity,) = client.get("/api/v1/users/me/identities", headers=headers).json
    response = client.delete(f"/api/v1/users/me/identities/{identity['id']}", headers=headers)
    assert_problem(response, 409, "last_sign_in_method")


def test_an_identity_linked_elsewhere_cannot_be_linked(fed_app: Flask) -> None:
    sign_in(fed_app.test_client(), "ada")
    add_user(fed_app, "second@example.com", verified=True)
    client = fed_app.test_client()
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "second@example.com", "password": PASSWORD}
    ).json
    url = client.post("/api/v1/users/me/identities", json={"provider": "local"},
                      headers=bearer(tokens["access_token"])).json["authorization_url"]  # fmt: skip
    provider_url = client.get(callback_path(url)).headers["Location"]
    back = sign_in_at_provider(requests.Session(), provider_url, "ada")
    assert_problem(client.get(callback_path(back)), 409, "identity_taken")


# Attacks on the flow.


def test_a_wrong_state_is_refused(fed_app: Flask) -> None:
    client = fed_app.test_client()
    back = sign_in_at_provider(requests.Session(), start(client), "ada")
    tampered = back.replace("state=", "state=x")
    assert_problem(client.get(callback_path(tampered)), 400, "sign_in_flow_invalid")


def test_a_replayed_state_is_refused(fed_app: Flask) -> None:
    client = fed_app.test_client()
    url = start(client)
    flow_cookie = client.get_cookie("warden_signin", path="/api/v1/auth/providers")
    assert flow_cookie is not None
    back = sign_in_at_provider(requests.Session(), url, "ada")
    assert client.get(callback_path(back)).status_code == 302
    # The cookie is gone; an attacker who kept it replays both.
    client.set_cookie("warden_signin", flow_cookie.value, path="/api/v1/auth/providers")
    assert_problem(client.get(callback_path(back)), 400, "sign_in_flow_invalid")


def test_a_callback_in_another_browser_is_refused(fed_app: Flask) -> None:
    back = sign_in_at_provider(requests.Session(), start(fed_app.test_client()), "ada")
    # Login CSRF: the victim's browser never started this flow.
    assert_problem(fed_app.test_client().get(callback_path(back)), 400, "sign_in_flow_invalid")


def test_a_swapped_authorization_code_is_refused(fed_app: Flask) -> None:
    victim, attacker = fed_app.test_client(), fed_app.test_client()
    victim_back = sign_in_at_provider(requests.Session(), start(victim), "ada")
    attacker_back = sign_in_at_provider(requests.Session(), start(attacker), "grace")
    victim_state = parse_qs(urlsplit(victim_back).query)["state"][0]
    attacker_code = parse_qs(urlsplit(attacker_back).query)["code"][0]
    swapped = f"/api/v1/auth/providers/local/callback?code={attacker_code}&state={victim_state}"
    # The code was bound to the attacker's PKCE challenge: the provider refuses it.
    assert_problem(victim.get(swapped), 400, "provider_refused")


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example.com/",
        "https://app.example.com.evil.example.com/",
        "https://app.example.com@evil.example.com/",
        "//evil.example.com/",
        "javascript:alert(1)",
        "http://app.example.com/",
        "https://app.example.com:8443/",
    ],
)
def test_an_open_redirect_is_refused(fed_app: Flask, return_to: str) -> None:
    response = fed_app.test_client().get(
        "/api/v1/auth/providers/local/authorize", query_string={"return_to": return_to}
    )
    assert_problem(response, 400, "invalid_redirect")


def test_return_to_an_allowed_origin(op: OidcProvider, app_factory: Callable[..., Flask]) -> None:
    application = app_factory(
        OIDC_PROVIDERS=providers_setting(op.setting()),
        SIGNIN_REDIRECT_ORIGINS=("http://localhost:5173",),
    )
    client = application.test_client()
    response = provider_callback(client, "ada", return_to="http://localhost:5173/done?x=1#old")
    location = response.headers["Location"]
    assert location.startswith("http://localhost:5173/done?x=1#code=")


def test_an_unknown_provider_is_404(fed_app: Flask) -> None:
    response = fed_app.test_client().get("/api/v1/auth/providers/nope/authorize")
    assert_problem(response, 404, "not_found")


def test_the_providers_are_listed(fed_app: Flask) -> None:
    response = fed_app.test_client().get("/api/v1/auth/providers")
    assert response.json == [{"name": "local", "title": "Local OP", "kind": "oidc"}]


@pytest.fixture
def rogue(app_factory: Callable[..., Flask]) -> Iterator[tuple[StandIn, Flask]]:
    """A stand-in OpenID provider whose ID tokens the test shapes."""
    with stand_in() as server:
        yield server, app_factory(OIDC_PROVIDERS=providers_setting(server.setting()))


def rogue_callback(client: FlaskClient) -> Any:
    url = start(client, "rogue")
    back = requests.get(url, allow_redirects=False).headers["Location"]
    return client.get(callback_path(back))


def test_the_stand_in_token_passes_unchanged(rogue: tuple[StandIn, Flask]) -> None:
    _server, application = rogue
    assert "code" in fragment(rogue_callback(application.test_client()))


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-client"},
        {"exp": 1_000_000_000, "iat": 999_999_000},
        {"nonce": "not-the-nonce"},
        {"nonce": None},
        {"iss": "https://accounts.example.com"},
    ],
    ids=["audience", "expired", "wrong-nonce", "no-nonce", "issuer"],
)
def test_a_bad_id_token_is_refused(rogue: tuple[StandIn, Flask], claims: dict[str, Any]) -> None:
    server, application = rogue
    server.claims = claims
    assert_problem(rogue_callback(application.test_client()), 401, "invalid_id_token")


def test_an_id_token_signed_by_another_key_is_refused(rogue: tuple[StandIn, Flask]) -> None:
    server, application = rogue
    published = server.jwk()
    server.jwk = lambda: published  # type: ignore[method-assign]
    # A forger's key under the published key's id.
    server.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_problem(rogue_callback(application.test_client()), 401, "invalid_id_token")


@pytest.fixture
def github(app_factory: Callable[..., Flask]) -> Iterator[tuple[StandIn, Flask]]:
    """GitHub played by a stand-in."""
    with stand_in() as server:
        application = app_factory(
            GITHUB_CLIENT_ID="gh-client",
            GITHUB_CLIENT_SECRET="gh-secret",
            GITHUB_URL=server.url,
            GITHUB_API_URL=server.url,
        )
        yield server, application


def github_callback(client: FlaskClient) -> Any:
    url = start(client, "github")
    assert url.startswith("http://127.0.0.1:") and "code_challenge=" in url
    back = requests.get(url, allow_redirects=False).headers["Location"]
    return client.get(callback_path(back))


def test_github_with_a_verified_primary_email_creates_an_account(
    github: tuple[StandIn, Flask],
) -> None:
    server, application = github
    server.github_emails = [
        {"email": "other@example.org", "primary": False, "verified": True},
        {"email": "octo@example.org", "primary": True, "verified": True},
    ]
    client = application.test_client()
    code = fragment(github_callback(client))["code"]
    tokens = client.post("/api/v1/auth/providers/sign-in", json={"code": code}).json
    assert me(client, tokens)["email"] == "octo@example.org"


def test_github_without_a_verified_email_creates_nothing(github: tuple[StandIn, Flask]) -> None:
    server, application = github
    server.github_emails = [{"email": "octo@example.org", "primary": True, "verified": False}]
    assert_problem(github_callback(application.test_client()), 403, "provider_email_unverified")


def test_without_providers_nothing_is_exposed(app_factory: Callable[..., Flask]) -> None:
    client = app_factory().test_client()
    for path in ("/api/v1/auth/providers", "/api/v1/users/me/identities"):
        assert client.get(path).status_code == 404
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/auth/login" in paths
    assert not any("providers" in path or "identities" in path for path in paths)


def test_a_user_with_a_second_factor_still_passes_it(fed_app: Flask) -> None:
    from tests.test_second_factor import add_totp, claims

    add_user(fed_app, "grace@example.org", verified=True)
    with fed_app.app_context():
        user = db.session.query(User).filter_by(email_normalized="grace@example.org").one()
        db.session.expunge(user)
    totp = add_totp(fed_app, user)
    client = fed_app.test_client()
    code = fragment(provider_callback(client, "grace"))["code"]
    response = client.post("/api/v1/auth/providers/sign-in", json={"code": code})
    assert response.status_code == 202, response.json
    assert "access_token" not in response.json
    answered = client.post(
        "/api/v1/auth/login/second-factor",
        json={"challenge": response.json["challenge"], "code": totp.now()},
    )
    assert answered.status_code == 200, answered.json
    assert claims(answered.json["access_token"])["amr"] == ["oidc", "otp"]


def test_a_provider_session_says_oidc(fed_app: Flask) -> None:
    from tests.test_second_factor import claims

    assert claims(sign_in(fed_app.test_client(), "ada")["access_token"])["amr"] == ["oidc"]


def test_configured_endpoints_are_documented(fed_app: Flask) -> None:
    paths = fed_app.test_client().get("/api/v1/openapi.json").json["paths"]
    assert {"/api/v1/auth/providers/{provider}/authorize", "/api/v1/users/me/identities"} <= set(
        paths
    )


def test_a_refusal_at_the_provider_is_a_problem(fed_app: Flask) -> None:
    client = fed_app.test_client()
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    response = client.get(
        "/api/v1/auth/providers/local/callback",
        query_string={"state": state, "error": "access_denied", "scope": "openid"},
    )
    assert_problem(response, 400, "provider_refused")


def test_an_unreachable_provider_is_503(app_factory: Callable[..., Flask]) -> None:
    from tests.mailbox import free_port

    silent = {"name": "down", "issuer": f"http://127.0.0.1:{free_port()}", "client_id": "x",
              "client_secret": "y"}  # fmt: skip
    application = app_factory(OIDC_PROVIDERS=providers_setting(silent), PROVIDER_TIMEOUT=2)
    response = application.test_client().get("/api/v1/auth/providers/down/authorize")
    assert_problem(response, 503, "provider_unavailable")


def test_a_callback_for_an_unknown_provider_is_404(fed_app: Flask) -> None:
    response = fed_app.test_client().get("/api/v1/auth/providers/nope/callback?state=x&code=y")
    assert_problem(response, 404, "not_found")


def test_a_link_ticket_starts_one_flow(fed_app: Flask) -> None:
    add_user(fed_app, "ticket@example.com", verified=True)
    client = fed_app.test_client()
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "ticket@example.com", "password": PASSWORD}
    ).json
    url = client.post(
        "/api/v1/users/me/identities",
        json={"provider": "local"},
        headers=bearer(tokens["access_token"]),
    ).json["authorization_url"]
    assert client.get(callback_path(url)).status_code == 302
    # Whoever sees the URL afterwards cannot link their own identity with it.
    assert_problem(fed_app.test_client().get(callback_path(url)), 400, "sign_in_flow_invalid")
    forged = callback_path(url).replace("link=", "link=x")
    assert_problem(client.get(forged), 400, "sign_in_flow_invalid")


def test_a_link_request_checks_its_input(fed_app: Flask) -> None:
    client = fed_app.test_client()
    headers = bearer(sign_in(client, "ada")["access_token"])
    assert_problem(
        client.post("/api/v1/users/me/identities", json={"provider": "nope"}, headers=headers),
        404,
        "not_found",
    )
    evil = {"provider": "local", "return_to": "https://evil.example.com/"}
    assert_problem(
        client.post("/api/v1/users/me/identities", json=evil, headers=headers),
        400,
        "invalid_redirect",
    )
    assert_problem(
        client.post("/api/v1/users/me/identities", json={"provider": "local"}),
        401,
        "authorization_required",
    )


def test_required_verification_holds_for_a_linked_identity(
    op: OidcProvider, app_factory: Callable[..., Flask]
) -> None:
    application = app_factory(OIDC_PROVIDERS=providers_setting(op.setting()))
    add_user(application, "unconfirmed@example.com", verified=False)
    client = application.test_client()
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "unconfirmed@example.com", "password": PASSWORD}
    ).json
    url = client.post(
        "/api/v1/users/me/identities",
        json={"provider": "local"},
        headers=bearer(tokens["access_token"]),
    ).json["authorization_url"]
    provider_url = client.get(callback_path(url)).headers["Location"]
    back = sign_in_at_provider(requests.Session(), provider_url, "grace")
    assert fragment(client.get(callback_path(back))) == {"linked": "local"}
    strict = app_factory(
        OIDC_PROVIDERS=providers_setting(op.setting()), REQUIRE_VERIFIED_EMAIL=True
    )
    browser = strict.test_client()
    code = fragment(provider_callback(browser, "grace"))["code"]
    response = browser.post("/api/v1/auth/providers/sign-in", json={"code": code})
    assert_problem(response, 403, "email_not_verified")


def test_a_deactivated_account_cannot_sign_in_with_its_identity(fed_app: Flask) -> None:
    client = fed_app.test_client()
    profile = me(client, sign_in(client, "ada"))
    with fed_app.app_context():
        user = db.session.get(User, uuid.UUID(profile["id"]))
        assert user is not None
        user.is_active = False
        db.session.commit()
    assert_problem(provider_callback(client, "ada"), 403, "account_disabled")


def test_an_account_without_password_signs_in_again_to_delete_itself(fed_app: Flask) -> None:
    from tests.test_reauthentication import age_sessions

    client = fed_app.test_client()
    tokens = sign_in(client, "ada")
    with fed_app.app_context():
        user = db.session.get(User, uuid.UUID(me(client, tokens)["id"]))
        assert user is not None
        db.session.expunge(user)
    age_sessions(fed_app, user)
    old = client.delete("/api/v1/users/me", json={}, headers=bearer(tokens["access_token"]))
    body = assert_problem(old, 403, "reauthentication_required")
    assert "identity provider" in body["detail"]
    again = sign_in(client, "ada")
    deleted = client.delete("/api/v1/users/me", json={}, headers=bearer(again["access_token"]))
    assert deleted.status_code == 204
    with fed_app.app_context():
        assert db.session.get(User, user.id) is None
