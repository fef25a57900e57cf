"""Rate limits, trusted proxies, login backoff and the password policy."""

from __future__ import annotations

import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from project.core.passwords import common_passwords, password_problems
from project.repositories.login_attempts import Limit, attempt_store
from project.services.throttle import backoff
from tests.conftest import (
    PASSWORD,
    assert_problem,
    bearer,
    make_settings,
    register_and_login,
    run_jobs,
)
from tests.mailbox import Mailbox

AppFactory = Callable[..., Flask]


def _login(client: FlaskClient, email: str, password: str, ip: str | None = None) -> object:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


def test_login_rate_limit_answers_429_with_headers(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_LOGIN="3 per minute").test_client()
    statuses = [
        client.post(
            "/api/v1/auth/login", json={"email": f"n{i}@example.com", "password": "whatever1"}
        )
        for i in range(4)
    ]
    assert [response.status_code for response in statuses] == [401, 401, 401, 429]
    limited = statuses[-1]
    body = assert_problem(limited, 429, "rate_limited")
    assert "3 per 1 minute" in body["detail"]
    # A sliding window may ask for up to two windows in the worst case.
    assert 0 < int(limited.headers["Retry-After"]) <= 120
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > time.time()
    # Only a 429 carries them: reading the window costs a Redis round trip per request.
    assert "X-RateLimit-Remaining" not in statuses[0].headers


def test_default_limit_covers_every_api_route_but_not_probes(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_DEFAULT="3 per minute").test_client()
    for _ in range(3):
        assert client.get("/api/v1/users/me").status_code == 401
    assert_problem(client.get("/api/v1/users/me"), 429, "rate_limited")
    assert all(client.get("/health/live").status_code == 200 for _ in range(5))
    assert all(client.get("/.well-known/jwks.json").status_code == 200 for _ in range(5))
    assert all(client.get("/metrics").status_code == 200 for _ in range(5))
    assert all(client.get("/api/v1/openapi.json").status_code == 200 for _ in range(5))


@pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_rate_limits_are_shared_between_instances(app_factory: AppFactory) -> None:
    first = app_factory(RATELIMIT_REGISTER="2 per minute").test_client()
    second = app_factory(RATELIMIT_REGISTER="2 per minute").test_client()
    payload = {"password": PASSWORD}
    assert (
        first.post("/api/v1/auth/register", json={**payload, "email": "s1@example.com"}).status_code
        == 201
    )
    assert (
        second.post(
            "/api/v1/auth/register", json={**payload, "email": "s2@example.com"}
        ).status_code
        == 201
    )
    third = first.post("/api/v1/auth/register", json={**payload, "email": "s3@example.com"})
    assert_problem(third, 429, "rate_limited")


def test_forwarded_for_is_ignored_without_trusted_proxies(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_LOGIN="2 per minute").test_client()
    for index in range(2):
        _login(client, "a@example.com", "whatever1", ip=f"203.0.113.{index}")
    # A client cannot pick a fresh address per request to dodge the limit.
    assert _login(client, "a@example.com", "whatever1", ip="203.0.113.99").status_code == 429


def test_forwarded_for_is_used_through_one_trusted_proxy(app_factory: AppFactory) -> None:
    client = app_factory(RATELIMIT_LOGIN="2 per minute", TRUSTED_PROXIES=1).test_client()
    for _ in range(2):
        _login(client, "a@example.com", "whatever1", ip="198.51.100.1")
    assert _login(client, "a@example.com", "whatever1", ip="198.51.100.1").status_code == 429
    assert _login(client, "a@example.com", "whatever1", ip="198.51.100.2").status_code == 401
    # Only the right-most hop (added by the trusted proxy) counts; a spoofed left part does not.
    spoofed = _login(client, "a@example.com", "whatever1", ip="10.9.9.9, 198.51.100.1")
    assert spoofed.status_code == 429


def test_sessions_record_the_forwarded_client_address(app_factory: AppFactory) -> None:
    client = app_factory(TRUSTED_PROXIES=1).test_client()
    client.post("/api/v1/auth/register", json={"email": "ip@example.com", "password": PASSWORD})
    tokens = _login(client, "ip@example.com", PASSWORD, ip="192.0.2.7").json  # type: ignore[attr-defined]
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(tokens["access_token"])).json
    assert sessions[0]["ip"] == "192.0.2.7"


@pytest.mark.parametrize(
    ("forwarded", "kept"),
    [
        ("a" * 46, None),  # longer than the column: PostgreSQL refused it with a 500
        ("not an address", None),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("fe80::1%" + "x" * 60, "fe80::1"),
    ],
)
def test_a_forwarded_address_is_kept_only_as_an_ip(
    app_factory: AppFactory, forwarded: str, kept: str | None
) -> None:
    client = app_factory(TRUSTED_PROXIES=1).test_client()
    client.post("/api/v1/auth/register", json={"email": "xff@example.com", "password": PASSWORD})
    assert _login(client, "xff@example.com", "a wrong one", ip=forwarded).status_code == 401
    tokens = _login(client, "xff@example.com", PASSWORD, ip=forwarded).json  # type: ignore[attr-defined]
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(tokens["access_token"])).json
    assert sessions[0]["ip"] == kept


@pytest.mark.parametrize(
    ("failures", "expected"), [(0, 0), (3, 0), (4, 1), (5, 2), (6, 4), (10, 60), (200, 60)]
)
def test_backoff_doubles_and_is_capped(failures: int, expected: int) -> None:
    assert backoff(failures, free=3, cap=60) == expected


def throttled_app(app_factory: AppFactory, **overrides: object) -> FlaskClient:
    """An instance with two free failures per address and small caps."""
    settings: dict[str, object] = {
        "LOGIN_FREE_FAILURES_PER_IP": 2,
        "LOGIN_FREE_FAILURES_PER_ACCOUNT": 4,
        "LOGIN_BACKOFF_CAP_IP": 1,
        "LOGIN_BACKOFF_CAP_ACCOUNT": 1,
        "TRUSTED_PROXIES": 1,
        **overrides,
    }
    # Without cookies, each request is an unknown device unless it sends a device_token.
    return app_factory(**settings).test_client(use_cookies=False)


def test_failures_lock_the_pair_and_a_success_resets(app_factory: AppFactory) -> None:
    client = throttled_app(app_factory, LOGIN_FREE_FAILURES_PER_ACCOUNT=10)
    register_and_login(client, "victim@example.com")
    statuses = [
        _login(client, "victim@example.com", "wrong-guess", "192.0.2.1").status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 401]
    locked = _login(client, "victim@example.com", PASSWORD, "192.0.2.1")
    body = assert_problem(locked, 429, "login_throttled")
    assert locked.headers["Retry-After"] == "1" and body["retry_after"] == 1
    # Another address is not affected by this pair's lock.
    assert _login(client, "victim@example.com", PASSWORD, "192.0.2.2").status_code == 200
    time.sleep(1.1)
    assert _login(client, "victim@example.com", PASSWORD, "192.0.2.1").status_code == 200
    # The success reset the pair's counter: its free failures are available again.
    statuses = [
        _login(client, "victim@example.com", "wrong-guess", "192.0.2.1").status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 401]


def test_unknown_emails_are_throttled_exactly_like_known_ones(app_factory: AppFactory) -> None:
    client = throttled_app(app_factory)
    register_and_login(client, "known@example.com")

    def sequence(email: str) -> list[tuple[int, str]]:
        results = []
        for _ in range(4):
            response = _login(client, email, "wrong-guess", "192.0.2.3")
            results.append((response.status_code, response.json["code"]))  # type: ignore[attr-defined]
        return results

    known, unknown = sequence("known@example.com"), sequence("ghost@example.com")
    assert known == unknown
    assert known[-1] == (429, "login_throttled")


def test_a_login_lock_out_carries_retry_after_but_no_rate_limit_headers(
    app_factory: AppFactory,
) -> None:
    """The X-RateLimit-* headers describe a breached rate limit; a lock-out is not one."""
    client = throttled_app(app_factory)
    responses = [_login(client, "x@example.com", "wrong-guess", "192.0.2.4") for _ in range(4)]
    locked = responses[-1]
    assert_problem(locked, 429, "login_throttled")
    assert int(locked.headers["Retry-After"]) >= 1
    assert not [name for name, _ in locked.headers.items() if name.startswith("X-RateLimit")]


def _spray(client: FlaskClient, email: str, count: int) -> None:
    """Wrong passwords from fresh addresses, as a distributed guesser sends them.

    After ``count`` guesses it keeps guessing as each lock ends, until the lock lasts 8 s,
    so the assertions that follow run inside one lock.
    """
    for index in range(250):
        response = _login(client, email, "guess", f"203.0.113.{index}")
        assert response.status_code in (401, 429), response.json  # type: ignore[attr-defined]
        if response.status_code == 429 and index >= count:
            wait = int(response.headers["Retry-After"])
            if wait >= 8:
                return
            time.sleep(wait)
    raise AssertionError("the account never locked for 8 s")


def test_spraying_from_many_addresses_cannot_lock_the_owner_out(
    app_factory: AppFactory, inbox: Mailbox
) -> None:
    client = throttled_app(app_factory, LOGIN_BACKOFF_CAP_ACCOUNT=300)
    register_and_login(client, "owner@example.com")
    device = _login(client, "owner@example.com", PASSWORD, "192.0.2.10").json["device_token"]  # type: ignore[attr-defined]
    _spray(client, "owner@example.com", 24)
    # Unknown devices are locked out, whatever the password and address ...
    for password in ("guess", PASSWORD):
        refused = _login(client, "owner@example.com", password, "198.51.100.7")
        assert_problem(refused, 429, "login_throttled")
        assert "access_token" not in refused.json  # type: ignore[operator]
    # ... but not the owner's device, from any address, and its success resets no pool.
    for ip in ("192.0.2.10", "198.51.100.8"):
        trusted = _login_with(client, "owner@example.com", PASSWORD, ip, device_token=device)
        assert trusted.status_code == 200, trusted.json
    assert_problem(
        _login(client, "owner@example.com", PASSWORD, "198.51.100.9"), 429, "login_throttled"
    )
    # The owner was mailed once, and the link lets a new device in and trusts it.
    run_jobs(client.application)  # with Redis, the worker sends the mail
    mail = inbox.wait_for("owner@example.com", "Sign-in attempts")
    time.sleep(0.3)
    assert len(inbox.messages("owner@example.com")) == 2  # the verification mail and this one
    assert "unlock-login?token=" in mail.text
    unlocked = _login_with(
        client, "owner@example.com", PASSWORD, "198.51.100.7", unlock_token=mail.token
    )
    assert unlocked.status_code == 200, unlocked.json
    new_device = unlocked.json["device_token"]
    again = _login_with(
        client, "owner@example.com", PASSWORD, "198.51.100.7", device_token=new_device
    )
    assert again.status_code == 200
    # The unlock token needs the password: a guesser holding it gets a 401, never tokens.
    wrong = _login_with(
        client, "owner@example.com", "guess", "198.51.100.6", unlock_token=mail.token
    )
    assert_problem(wrong, 401, "invalid_credentials")


def _login_with(
    client: FlaskClient, email: str, password: str, ip: str, **tokens: str
) -> TestResponse:
    return client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password, **tokens},
        headers={"X-Forwarded-For": ip},
    )


def test_a_device_token_trusts_only_its_own_account(app_factory: AppFactory) -> None:
    client = throttled_app(app_factory, LOGIN_BACKOFF_CAP_ACCOUNT=300)
    register_and_login(client, "first@example.com")
    register_and_login(client, "second@example.com")
    device = _login(client, "first@example.com", PASSWORD, "192.0.2.20").json["device_token"]  # type: ignore[attr-defined]
    _spray(client, "second@example.com", 8)
    for token in (device, device[:-2] + "xx", "not a token"):
        refused = _login_with(
            client, "second@example.com", PASSWORD, "192.0.2.20", device_token=token
        )
        assert_problem(refused, 429, "login_throttled")


def test_a_trusted_device_is_locked_by_its_own_failures(app_factory: AppFactory) -> None:
    client = throttled_app(app_factory)
    register_and_login(client, "careless@example.com")
    device = _login(client, "careless@example.com", PASSWORD, "192.0.2.30").json["device_token"]  # type: ignore[attr-defined]
    statuses = [
        _login_with(
            client, "careless@example.com", "guess", f"192.0.2.{31 + i}", device_token=device
        ).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # The device's lock is its own: an unknown device is not held by it.
    assert _login(client, "careless@example.com", PASSWORD, "192.0.2.40").status_code == 200


def test_a_browser_keeps_its_device_token_in_an_http_only_cookie(app_factory: AppFactory) -> None:
    app = app_factory(
        LOGIN_FREE_FAILURES_PER_ACCOUNT=2, LOGIN_BACKOFF_CAP_ACCOUNT=300, TRUSTED_PROXIES=1
    )
    browser = app.test_client()
    register_and_login(browser, "browser@example.com")
    cookie = browser.get_cookie("warden_device", path="/api/v1/auth/login")
    assert cookie is not None and cookie.http_only
    _spray(app.test_client(use_cookies=False), "browser@example.com", 4)
    assert _login(browser, "browser@example.com", PASSWORD, "192.0.2.50").status_code == 200
    stranger = app.test_client()
    assert_problem(_login(stranger, "browser@example.com", PASSWORD), 429, "login_throttled")


def test_a_password_reset_lifts_the_account_lock(app_factory: AppFactory, inbox: Mailbox) -> None:
    app = app_factory(
        LOGIN_FREE_FAILURES_PER_ACCOUNT=2, LOGIN_BACKOFF_CAP_ACCOUNT=300, TRUSTED_PROXIES=1
    )
    client = app.test_client(use_cookies=False)
    register_and_login(client, "reset@example.com")
    _spray(client, "reset@example.com", 4)
    assert_problem(
        _login(client, "reset@example.com", PASSWORD, "192.0.2.60"), 429, "login_throttled"
    )
    client.post("/api/v1/auth/password/forgot", json={"email": "reset@example.com"})
    run_jobs(app)
    token = inbox.wait_for("reset@example.com", "Reset your password").token
    new_password = "a brand new passphrase"
    reset = client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204, reset.json
    assert _login(client, "reset@example.com", new_password, "192.0.2.60").status_code == 200


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_at_a_locks_end_only_one_attempt_is_let_through(
    app_factory: AppFactory, store: str
) -> None:
    if store == "redis" and not make_settings().REDIS_URL:
        pytest.skip("needs TEST_REDIS_URL")
    app = app_factory(**({"REDIS_URL": None} if store == "memory" else {}))
    limits = [Limit(f"warden:login:test:{uuid.uuid4().hex}", 1, 1)]
    with app.app_context():
        attempts = attempt_store()
        attempts.delete(limits[0].key)
        assert attempts.reserve(limits, ttl=60) == 0
        assert attempts.reserve(limits, ttl=60) == 0  # past the free one: locks for 1 s
        assert attempts.reserve(limits, ttl=60) > 0
        time.sleep(1.05)
        start = threading.Barrier(16)

        def attempt(_: int) -> float:
            start.wait(timeout=10)
            return attempts.reserve(limits, ttl=60)

        with ThreadPoolExecutor(max_workers=16) as pool:
            waits = list(pool.map(attempt, range(16)))
        attempts.delete(limits[0].key)
    assert sum(wait == 0 for wait in waits) == 1, waits


def test_common_password_list_is_the_100k_list() -> None:
    passwords = common_passwords()
    assert len(passwords) > 95_000
    assert {"123456", "password", "qwerty", "iloveyou"} <= passwords


@pytest.mark.parametrize(
    ("password", "email", "fragment"),
    [
        ("password123", "x@example.com", "common"),
        ("Iloveyou1", "x@example.com", "common"),
        ("margaret-in-the-sun", "Margaret@example.com", "email"),
        ("short", "x@example.com", "8 to 128"),
    ],
)
def test_password_problems(password: str, email: str, fragment: str) -> None:
    problems = password_problems(password, email=email)
    assert any(fragment in problem for problem in problems), problems


def full_width(text: str) -> str:
    """The text in full-width forms, which NFKC turns back into ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize(
    ("password", "email"),
    [
        (full_width("password123"), "bob@example.com"),  # breached, once normalized
        ("My" + full_width("alice") + "-is-great", "alice@example.com"),  # the email's name
    ],
)
def test_the_policy_judges_the_password_that_is_hashed(password: str, email: str) -> None:
    """security.py hashes the NFKC form, so the policy judges that form, not the raw text."""
    assert password != unicodedata.normalize("NFKC", password)
    assert password_problems(password, email=email)


@pytest.mark.parametrize(
    ("password", "email"),
    [("xAlice-99-pass", "alice@example.com"), ("bob-is-home-now", "bob@example.com")],
)
def test_the_emails_name_is_refused_in_any_case_from_three_letters(
    password: str, email: str
) -> None:
    assert any("email" in problem for problem in password_problems(password, email=email))


def test_good_passwords_pass() -> None:
    assert password_problems("correct horse battery staple", email="al@example.com") == []
    assert password_problems("tangerine-oboe-42", email="x@example.com") == []


def test_weak_passwords_are_refused_on_register_and_change(
    client: FlaskClient, user_headers: dict[str, str]
) -> None:
    body = assert_problem(
        client.post(
            "/api/v1/auth/register", json={"email": "newbie@example.com", "password": "password1"}
        ),
        422,
        "weak_password",
    )
    assert body["errors"]["password"]
    body = assert_problem(
        client.post(
            "/api/v1/auth/register",
            json={"email": "newbie@example.com", "password": "newbie-2024!"},
        ),
        422,
        "weak_password",
    )
    assert "email" in body["errors"]["password"][0]
    changed = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "qwertyuiop"},
        headers=user_headers,
    )
    assert "new_password" in assert_problem(changed, 422, "weak_password")["errors"]
