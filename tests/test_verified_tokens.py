"""Each worker verifies a token's signature once; expiry, revocation and keys still hold."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from project.core.verified_tokens import CACHE_KEY, VerifiedTokenCache
from project.models import User
from tests.conftest import assert_problem, bearer, register_and_login


def test_a_verified_token_is_remembered_until_it_expires() -> None:
    cache = VerifiedTokenCache(size=8)
    cache.put("live", None, {"sub": "a", "exp": time.time() + 60})
    cache.put("dead", None, {"sub": "b", "exp": time.time() - 1})
    claims = cache.get("live", None)
    assert claims is not None and claims["sub"] == "a"
    claims["sub"] = "changed by a caller"
    assert cache.get("live", None)["sub"] == "a"  # type: ignore[index]
    assert cache.get("dead", None) is None and "dead" not in cache
    assert cache.get("live", "another csrf value") is None


def test_the_cache_is_bounded_and_keeps_only_expiring_tokens() -> None:
    cache = VerifiedTokenCache(size=2)
    later = time.time() + 60
    for name in ("first", "second", "third"):
        cache.put(name, None, {"exp": later})
    cache.put("no expiry", None, {"sub": "x"})
    assert len(cache) == 2 and "first" not in cache and "third" in cache
    off = VerifiedTokenCache(size=0)
    off.put("token", None, {"exp": later})
    assert len(off) == 0


def test_requests_reuse_the_verification_and_revocation_still_applies(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    token = login(make_user().email)["access_token"]
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200
    assert token in app.extensions[CACHE_KEY]
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert_problem(client.get("/api/v1/users/me", headers=bearer(token)), 401, "token_revoked")


def test_each_app_verifies_tokens_with_its_own_keys(app_factory: Callable[..., Flask]) -> None:
    first = app_factory(JWT_SECRET_KEY="first-secret-of-at-least-thirty-two-bytes")
    second = app_factory(JWT_SECRET_KEY="second-secret-of-at-least-thirty-two-byte")
    token = register_and_login(first.test_client(), "keys@example.com")["access_token"]
    assert first.test_client().get("/api/v1/users/me", headers=bearer(token)).status_code == 200
    assert token in first.extensions[CACHE_KEY] and token not in second.extensions[CACHE_KEY]
    refused = second.test_client().get("/api/v1/users/me", headers=bearer(token))
    assert_problem(refused, 401, "invalid_token")


def test_a_zero_size_turns_the_cache_off(app_factory: Callable[..., Flask]) -> None:
    application = app_factory(TOKEN_CACHE_SIZE=0)
    client = application.test_client()
    token = register_and_login(client, "nocache@example.com")["access_token"]
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200
    assert len(application.extensions[CACHE_KEY]) == 0


def test_refresh_tokens_are_not_remembered(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    pair = login(make_user().email)
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code
        == 200
    )
    assert pair["refresh_token"] not in app.extensions[CACHE_KEY]
