"""The per-account rate limit of requests with an access token (RATELIMIT_ACCOUNT)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask
from limits import parse

from project.services.account_limit import Window
from tests.conftest import assert_problem, bearer, make_config, register_and_login

AppFactory = Callable[..., Flask]
HIGH = "100000 per minute"


@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "expected"),
    [
        (3, 0, 0.5, None),  # at the limit: this request fits
        (1, 4, 0.5, None),  # 4 * (1 - 0.5) + 1 = 3: the previous window's weight fits too
        (4, 0, 0.5, 60),  # over in this window: in the next, at f = 0.5, 4 * 0.5 + 1 <= 3
        (2, 20, 0.5, 30),  # 10 + 2 > 3: one more fits when 20 * (1 - f) + 3 <= 3, at f = 1
    ],
)
def test_a_window_says_when_the_next_request_fits(
    current: int, previous: int, elapsed: float, expected: int | None
) -> None:
    window = Window(parse("3 per minute"), index=100, elapsed=elapsed)
    assert window.retry_after(current, previous) == expected


def test_retry_after_is_when_the_weighted_count_has_room() -> None:
    window = Window(parse("10 per minute"), index=7, elapsed=0.5)
    # 20 * 0.5 + 5 = 15 > 10; one more fits when 20 * (1 - f) + 6 <= 10, at f = 0.8.
    assert window.retry_after(5, 20) == 18


def test_requests_with_a_token_are_limited_per_account(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_ACCOUNT="3 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    first = bearer(register_and_login(client, "one@example.com")["access_token"])
    other = bearer(register_and_login(client, "two@example.com")["access_token"])
    assert [client.get("/api/v1/users/me", headers=first).status_code for _ in range(3)] == [
        200
    ] * 3
    # Every view that checks the token counts against the same account.
    limited = client.get("/api/v1/auth/sessions", headers=first)
    body = assert_problem(limited, 429, "rate_limited")
    assert "3 per 1 minute" in body["detail"]
    assert 0 < int(limited.headers["Retry-After"]) <= 120
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) >= time.time()
    # Another account from the same address is not affected; the same account from
    # another address is.
    assert client.get("/api/v1/users/me", headers=other).status_code == 200
    moved = client.get(
        "/api/v1/users/me", headers=first, environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert_problem(moved, 429, "rate_limited")


def test_verified_tokens_skip_the_per_ip_default_limit(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_DEFAULT="2 per minute", RATELIMIT_ACCOUNT=HIGH).test_client()
    headers = bearer(register_and_login(client, "reader@example.com")["access_token"])
    # The first use of a token is counted per IP too (it is not yet known to be genuine).
    assert [client.get("/api/v1/users/me", headers=headers).status_code for _ in range(6)] == [
        200
    ] * 6
    assert client.get("/api/v1/users/me").status_code == 401
    assert_problem(client.get("/api/v1/users/me"), 429, "rate_limited")


def test_made_up_tokens_are_limited_per_ip(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_DEFAULT="2 per minute", RATELIMIT_ACCOUNT=HIGH).test_client()
    forged = bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
    assert [client.get("/api/v1/users/me", headers=forged).status_code for _ in range(2)] == [
        401,
        401,
    ]
    assert_problem(client.get("/api/v1/users/me", headers=forged), 429, "rate_limited")


def test_views_with_their_own_limit_keep_it(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_PASSWORD="2 per minute", RATELIMIT_ACCOUNT=HIGH).test_client()
    headers = bearer(register_and_login(client, "namer@example.com")["access_token"])
    statuses = [
        client.patch("/api/v1/users/me", json={"full_name": f"N{i}"}, headers=headers).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_the_account_limit_is_off_with_rate_limiting(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_ENABLED=False, RATELIMIT_ACCOUNT="1 per minute").test_client()
    headers = bearer(register_and_login(client, "free@example.com")["access_token"])
    assert all(client.get("/api/v1/users/me", headers=headers).status_code == 200 for _ in range(4))


@pytest.mark.skipif(not make_config().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_instances_share_the_account_count(app_factory: AppFactory) -> None:
    first = app_factory(RATELIMIT_ACCOUNT="2 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    second = app_factory(RATELIMIT_ACCOUNT="2 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    headers = bearer(register_and_login(first, "shared@example.com")["access_token"])
    assert first.get("/api/v1/users/me", headers=headers).status_code == 200
    assert second.get("/api/v1/users/me", headers=headers).status_code == 200
    assert_problem(first.get("/api/v1/users/me", headers=headers), 429, "rate_limited")
    assert_problem(second.get("/api/v1/users/me", headers=headers), 429, "rate_limited")
