"""Asymmetric signing with key ids, the JWKS endpoint, key rotation and forged tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from flask import Flask
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from werkzeug.serving import make_server

from config import ConfigError, flask_config, load_settings
from tests.conftest import PASSWORD, assert_problem, bearer, register_and_login
from tests.live import Deployment, call, flush_redis, production_env

AppFactory = Callable[..., Flask]


def rsa_jwk(kid: str) -> dict[str, Any]:
    """A private RS256 JWK."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {**json.loads(RSAAlgorithm.to_jwk(key)), "kid": kid, "alg": "RS256"}


def ed_jwk(kid: str) -> dict[str, Any]:
    """A private EdDSA (Ed25519) JWK."""
    key = ed25519.Ed25519PrivateKey.generate()
    return {**json.loads(OKPAlgorithm.to_jwk(key)), "kid": kid, "alg": "EdDSA"}


@pytest.fixture
def live_url() -> Iterator[Callable[[Flask], str]]:
    """Serve apps over real HTTP on free loopback ports."""
    servers = []

    def serve(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize("make_key", [rsa_jwk, ed_jwk], ids=["RS256", "EdDSA"])
def test_pyjwkclient_verifies_tokens_from_a_live_server(
    app_factory: AppFactory,
    live_url: Callable[[Flask], str],
    make_key: Callable[[str], dict[str, Any]],
) -> None:
    jwk = make_key("key-1")
    app = app_factory(JWT_SIGNING_KEYS=(jwk,))
    base = live_url(app)
    tokens = register_and_login(app.test_client(), "keys@example.com")
    client = pyjwt.PyJWKClient(f"{base}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(tokens["access_token"])
    claims = pyjwt.decode(
        tokens["access_token"],
        signing_key.key,
        algorithms=[jwk["alg"]],
        audience="warden",
        issuer="warden",
    )
    assert claims["type"] == "access"
    assert pyjwt.get_unverified_header(tokens["access_token"])["kid"] == "key-1"
    served = (
        json.loads(client.fetch_data())
        if isinstance(client.fetch_data(), str)
        else client.fetch_data()
    )
    public = served["keys"][0]
    assert public["kid"] == "key-1" and public["use"] == "sig"
    assert "d" not in public and "p" not in public  # no private material


def verify_access_token(jwks: pyjwt.PyJWKClient, token: str, algorithm: str) -> dict[str, Any]:
    """The check docs/api.md gives resource servers: key by kid, iss, aud, exp, type."""
    key = jwks.get_signing_key_from_jwt(token)
    claims = pyjwt.decode(
        token,
        key.key,
        algorithms=[algorithm],
        issuer="warden",
        audience="warden",
        options={"require": ["exp", "sub"]},
    )
    if claims.get("type") != "access":
        raise pyjwt.InvalidTokenError("not an access token")
    return claims


@pytest.mark.live
@pytest.mark.parametrize("make_key", [rsa_jwk, ed_jwk], ids=["RS256", "EdDSA"])
def test_a_resource_server_verifies_access_tokens_with_the_published_jwks(
    empty_database_url: str, tmp_path: Path, make_key: Callable[[str], dict[str, Any]]
) -> None:
    jwk = make_key("2026-01")
    env = production_env(empty_database_url, JWT_SIGNING_KEYS=json.dumps({"keys": [jwk]}))
    env.pop("JWT_SECRET_KEY")
    deployment = Deployment(env=env, folder=tmp_path)
    flush_redis(env)
    deployment.release()
    try:
        deployment.start("web")
        deployment.wait_ready()
        base = deployment.base
        credentials = {"email": "resource@example.com", "password": PASSWORD}
        assert call(base, "POST", "/api/v1/auth/register", credentials)[0] == 201
        status, tokens = call(base, "POST", "/api/v1/auth/login", credentials)
        assert status == 200
        published = call(base, "GET", "/.well-known/jwks.json")[1]["keys"]
        assert [(key["kid"], key["use"]) for key in published] == [("2026-01", "sig")]
        assert "key_ops" not in published[0]  # RFC 7517 4.3: not together with "use"

        jwks = pyjwt.PyJWKClient(f"{base}/.well-known/jwks.json")
        claims = verify_access_token(jwks, tokens["access_token"], jwk["alg"])
        assert claims["iss"] == claims["aud"] == "warden" and claims["exp"] > time.time()
        # A refresh token carries a good signature, issuer, audience and expiry: only its
        # type tells it apart.
        refresh = tokens["refresh_token"]
        signing_key = jwks.get_signing_key_from_jwt(refresh).key
        decoded = pyjwt.decode(
            refresh, signing_key, [jwk["alg"]], issuer="warden", audience="warden"
        )
        assert decoded["type"] == "refresh"
        with pytest.raises(pyjwt.InvalidTokenError, match="not an access token"):
            verify_access_token(jwks, refresh, jwk["alg"])

        # The same check refuses what Warden would: another audience, an expired token.
        private = pyjwt.PyJWK(jwk).key
        header = {"kid": "2026-01"}
        for changes, error in (
            ({"aud": "billing"}, pyjwt.InvalidAudienceError),
            ({"iss": "elsewhere"}, pyjwt.InvalidIssuerError),
            ({"exp": int(time.time()) - 60}, pyjwt.ExpiredSignatureError),
        ):
            forged = pyjwt.encode({**claims, **changes}, private, jwk["alg"], headers=header)
            with pytest.raises(error):
                verify_access_token(jwks, forged, jwk["alg"])
    finally:
        deployment.stop_all()
        flush_redis(env)


def _config(jwks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"JWT_SIGNING_KEYS": tuple(jwks)}


def test_rotation_keeps_tokens_of_the_previous_key_valid(app_factory: AppFactory) -> None:
    old, new = ed_jwk("2026-01"), ed_jwk("2026-02")
    before = app_factory(**_config([old])).test_client()
    tokens = register_and_login(before, "rotate@example.com")
    after = app_factory(**_config([new, old])).test_client()
    assert after.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 200
    renewed = after.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).json
    assert pyjwt.get_unverified_header(renewed["access_token"])["kid"] == "2026-02"
    published = {key["kid"] for key in after.get("/.well-known/jwks.json").json["keys"]}
    assert published == {"2026-01", "2026-02"}
    # Once the old key is dropped, its tokens stop working.
    dropped = app_factory(**_config([new])).test_client()
    assert_problem(
        dropped.get("/api/v1/users/me", headers=bearer(tokens["access_token"])),
        401,
        "invalid_token",
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_tokens_are_refused(app_factory: AppFactory) -> None:
    jwk = rsa_jwk("real")
    client = app_factory(**_config([jwk])).test_client()
    tokens = register_and_login(client, "forge@example.com")
    claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown_key = pyjwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "attacker"})
    wrong_key_known_kid = pyjwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "real"})
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'real'})}.{_b64(claims)}."
    public_pem = (
        pyjwt.PyJWK(jwk)
        .key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # The classic confusion attack: HMAC "signed" with the server's public key as the secret.
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "real"})
    signing_input = f"{header}.{_b64(claims)}".encode()
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    hs256_confusion = (
        f"{header}.{_b64(claims)}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    )

    for token in (unknown_key, wrong_key_known_kid, alg_none, hs256_confusion):
        assert_problem(client.get("/api/v1/users/me", headers=bearer(token)), 401, "invalid_token")
    assert client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 200


def test_hs256_serves_an_empty_key_set(client: Any) -> None:
    assert client.get("/.well-known/jwks.json").json == {"keys": []}


def test_key_set_configuration_is_validated(tmp_path: Any) -> None:
    good = ed_jwk("k1")
    settings = load_settings({"JWT_SIGNING_KEYS": json.dumps({"keys": [good]})})
    assert settings.JWT_ALGORITHM == "EdDSA"
    assert flask_config(settings)["JWT_DECODE_ALGORITHMS"] == ["EdDSA"]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [rsa_jwk("r1")]}))
    assert load_settings({"JWT_SIGNING_KEYS_FILE": str(path)}).JWT_ALGORITHM == "RS256"
    public_only = {key: value for key, value in good.items() if key != "d"}
    for bad in (
        "not json",
        json.dumps({"keys": []}),
        json.dumps({"keys": [{**good, "kid": ""}]}),
        json.dumps({"keys": [{**good, "alg": "HS256"}]}),
        json.dumps({"keys": [public_only]}),
        json.dumps({"keys": [good, rsa_jwk("r2")]}),
        # Each of these would otherwise start, crash at start or fail every login.
        json.dumps({"keys": [ed_jwk("same"), ed_jwk("same")]}),
        json.dumps({"keys": [{**good, "kid": 7}]}),
        json.dumps({"keys": [{**good, "kid": ["k1"]}]}),
        json.dumps({"keys": [None]}),
        json.dumps({"keys": ["abc"]}),
        json.dumps({"keys": "abc"}),
        json.dumps({"keys": {"a": 1}}),
    ):
        with pytest.raises(ConfigError, match="JWT_SIGNING_KEYS"):
            load_settings({"JWT_SIGNING_KEYS": bad})
    production = {
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 32,
        "JWT_SIGNING_KEYS": json.dumps({"keys": [good]}),
        "MFA_ENCRYPTION_KEYS": "m" * 32,
        "MAIL_SERVER": "smtp.example.com",
        "FRONTEND_URL": "https://app.example.com",
    }
    assert load_settings(production).JWT_ALGORITHM == "EdDSA"  # no JWT_SECRET_KEY needed
