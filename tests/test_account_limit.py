"""The per-account rate limit of requests with an access token (RATELIMIT_ACCOUNT)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import limits.storage.memory
import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits import parse

from project.api.ratelimits import counted_elsewhere
from project.extensions import redis_client
from project.services import access
from project.services.access import Window
from tests.conftest import PASSWORD, assert_problem, bearer, make_settings, register_and_login

AppFactory = Callable[..., Flask]
HIGH = "100000 per minute"


def _second_session(client: FlaskClient, email: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.json
    return bearer(answer.json["access_token"])


@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "expected"),
    [
        (2, 0, 0.5, None),  # the third of 3 fits
        (0, 4, 0.5, None),  # 4 * (1 - 0.5) + 0 + 1 = 3 fits
        (3, 0, 0.5, 50),  # full: in the next window, when 3 * (1 - f) + 1 <= 3, at f = 1/3
        (1, 20, 0.5, 27),  # 10 + 1 + 1 > 3: one more fits when 20 * (1 - f) + 2 <= 3, f = 0.95
    ],
)
def test_a_window_says_when_the_next_request_fits(
    current: int, previous: int, elapsed: float, expected: int | None
) -> None:
    window = Window(parse("3 per minute"), index=100, elapsed=elapsed)
    assert window.retry_after(current, previous) == expected


def test_retry_after_is_when_the_weighted_count_has_room() -> None:
    window = Window(parse("10 per minute"), index=7, elapsed=0.5)
    # 20 * 0.5 + 5 + 1 = 16 > 10; one more fits when 20 * (1 - f) + 6 <= 10, at f = 0.8.
    assert window.retry_after(5, 20) == 18


def test_requests_with_a_token_are_limited_per_account(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_ACCOUNT="3 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    first = bearer(register_and_login(client, "one@example.com")["access_token"])
    other = bearer(register_and_login(client, "two@example.com")["access_token"])
    assert [client.get("/api/v1/users/me", headers=first).status_code for _ in range(3)] == [
        200
    ] * 3
    # Every view that checks the token counts against the same account; refused requests
    # do not count, so the account's budget is not pushed further away by retries.
    for _ in range(3):
        limited = client.get("/api/v1/auth/sessions", headers=first)
        assert limited.status_code == 429
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


def test_flask_limiters_request_check_skips_views_limited_by_their_own_decorator(
    app_factory: AppFactory,
) -> None:
    app = app_factory(RATELIMIT_DEFAULT="2 per minute", RATELIMIT_REFRESH=HIGH)
    with app.test_request_context("/api/v1/auth/refresh", method="POST"):
        assert counted_elsewhere()
    with app.test_request_context("/api/v1/users/me"):
        assert not counted_elsewhere()
    client = app.test_client()
    refresh = register_and_login(client, "renewer@example.com")["refresh_token"]
    for _ in range(3):  # past the default limit: a refresh counts under its own
        answer = client.post("/api/v1/auth/refresh", headers=bearer(refresh))
        assert answer.status_code == 200, answer.json
        refresh = answer.json["refresh_token"]


def test_the_account_limit_is_off_with_rate_limiting(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_ENABLED=False, RATELIMIT_ACCOUNT="1 per minute").test_client()
    headers = bearer(register_and_login(client, "free@example.com")["access_token"])
    assert all(client.get("/api/v1/users/me", headers=headers).status_code == 200 for _ in range(4))


@pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_instances_share_the_account_count(app_factory: AppFactory) -> None:
    first = app_factory(RATELIMIT_ACCOUNT="2 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    second = app_factory(RATELIMIT_ACCOUNT="2 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    headers = bearer(register_and_login(first, "shared@example.com")["access_token"])
    assert first.get("/api/v1/users/me", headers=headers).status_code == 200
    assert second.get("/api/v1/users/me", headers=headers).status_code == 200
    assert_problem(first.get("/api/v1/users/me", headers=headers), 429, "rate_limited")
    assert_problem(second.get("/api/v1/users/me", headers=headers), 429, "rate_limited")


def test_a_refresh_token_cannot_escape_both_limits(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_DEFAULT="2 per minute", RATELIMIT_ACCOUNT="2 per minute")
    client = client.test_client()
    refresh = bearer(register_and_login(client, "refresher@example.com")["refresh_token"])
    statuses = [client.get("/api/v1/users/me", headers=refresh).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_revoked_tokens_are_refused_not_counted_against_the_account(
    app_factory: AppFactory,
) -> None:
    client = app_factory(RATELIMIT_ACCOUNT="3 per minute", RATELIMIT_DEFAULT="5 per minute")
    client = client.test_client()
    stolen = bearer(register_and_login(client, "victim@example.com")["access_token"])
    mine = _second_session(client, "victim@example.com")
    assert client.get("/api/v1/users/me", headers=stolen).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=stolen).status_code == 204
    # The revoked token answers 401. Its first refusal drops it from the worker's verified
    # tokens, so from then on it is counted per IP: 5 per minute for this route, of which
    # the first read (a token not yet verified) took one.
    statuses = [client.get("/api/v1/users/me", headers=stolen).status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 401, 429]
    # The owner's budget was not spent by it, and another address is not limited.
    elsewhere = {"REMOTE_ADDR": "198.51.100.9"}
    assert [
        client.get("/api/v1/users/me", headers=mine, environ_base=elsewhere).status_code
        for _ in range(2)
    ] == [200, 200]


def test_ending_sessions_is_never_limited_per_account(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_ACCOUNT="2 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    thief = bearer(register_and_login(client, "owner@example.com")["access_token"])
    owner = _second_session(client, "owner@example.com")
    for _ in range(3):
        client.get("/api/v1/users/me", headers=thief)
    assert_problem(client.get("/api/v1/users/me", headers=owner), 429, "rate_limited")
    sessions = client.get("/api/v1/auth/sessions", headers=owner)
    assert sessions.status_code == 429
    ended = client.post("/api/v1/auth/logout?scope=others", headers=owner)
    assert ended.status_code == 204
    assert client.get("/api/v1/users/me", headers=thief).status_code == 401


def test_retry_after_names_the_longest_wait(app_factory: AppFactory) -> None:
    client = app_factory(
        RATELIMIT_ACCOUNT="2 per minute;2 per hour", RATELIMIT_DEFAULT=HIGH
    ).test_client()
    headers = bearer(register_and_login(client, "patient@example.com")["access_token"])
    assert [client.get("/api/v1/users/me", headers=headers).status_code for _ in range(2)] == [
        200,
        200,
    ]
    # Both windows are full; waiting out the minute would only be refused again. Whenever
    # in the hour this runs, the hourly wait is at least half an hour.
    limited = client.get("/api/v1/users/me", headers=headers)
    body = assert_problem(limited, 429, "rate_limited")
    assert "2 per 1 hour" in body["detail"]
    assert int(limited.headers["Retry-After"]) > 1000


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:1/0"], ids=["none", "down"])
def test_counting_in_memory_waits_until_a_request_fits(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch, redis_url: str | None
) -> None:
    # 0.9 into an hour, where the end of the window (0.1 h) is not when a request fits.
    hour = 3600
    clock = SimpleNamespace(time=lambda: (int(time.time() // hour) + 0.9) * hour)
    monkeypatch.setattr(limits.storage.memory, "time", clock)
    monkeypatch.setattr(access, "time", clock)
    app = app_factory(
        RATELIMIT_ACCOUNT="2 per hour",
        RATELIMIT_DEFAULT=HIGH,
        REDIS_URL=redis_url,
    )
    client = app.test_client()
    headers = bearer(register_and_login(client, "offline@example.com")["access_token"])
    assert [client.get("/api/v1/users/me", headers=headers).status_code for _ in range(2)] == [
        200,
        200,
    ]
    refused = client.get("/api/v1/users/me", headers=headers)
    assert_problem(refused, 429, "rate_limited")
    # Next hour, this one's 2 weigh 2 * (1 - f); a third fits from f = 1/2: in 0.1 + 0.5 h.
    assert refused.headers["Retry-After"] == str(round(0.6 * hour))


@pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_counts_in_redis_cover_cold_sessions_and_skip_refusals(app_factory: AppFactory) -> None:
    app = app_factory(RATELIMIT_ACCOUNT="2 per minute", RATELIMIT_DEFAULT=HIGH)
    client = app.test_client()
    headers = bearer(register_and_login(client, "cold@example.com")["access_token"])
    with app.app_context():
        redis = redis_client.client
        assert redis is not None
        for _ in range(2):
            # No marker: the database answers, and the request is still counted.
            for marker in redis.keys("warden:session:*"):
                redis.delete(marker)
            assert client.get("/api/v1/users/me", headers=headers).status_code == 200
        for _ in range(3):
            assert client.get("/api/v1/users/me", headers=headers).status_code == 429
        counts = [int(redis.get(key)) for key in redis.keys("warden-rl:account:*")]
        assert counts == [2]  # the refused requests were not counted
        (key,) = redis.keys("warden-rl:account:*")
        assert 60 < redis.ttl(key) <= 120


def test_tokens_voided_by_a_security_change_spend_no_budget(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_ACCOUNT="3 per minute", RATELIMIT_DEFAULT=HIGH).test_client()
    pair = register_and_login(client, "careful@example.com")
    old = bearer(pair["access_token"])
    assert client.get("/api/v1/users/me", headers=old).status_code == 200
    changed = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers=old,
    )
    assert changed.status_code == 204
    # The session lives on, so its marker still says active; the old token is void.
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        refused = client.get("/api/v1/users/me", headers=old, environ_base={"REMOTE_ADDR": address})
        assert_problem(refused, 401, "token_revoked")
    fresh = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
    new = bearer(fresh.json["access_token"])
    # One read so far: two more fit.
    assert [client.get("/api/v1/users/me", headers=new).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
