"""Views that hash passwords share a bounded number of slots per process; the rest get 503."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from project.core.security import HASHING_KEY, HashingSlots
from tests.conftest import PASSWORD, assert_problem, bearer, register_and_login

AppFactory = Callable[..., Flask]

HASHING_REQUESTS = [
    ("POST", "/api/v1/auth/login", {"email": "a@example.com", "password": PASSWORD}),
    ("POST", "/api/v1/auth/register", {"email": "b@example.com", "password": PASSWORD}),
    ("POST", "/api/v1/users/me/password", {"current_password": PASSWORD, "new_password": "x"}),
    ("DELETE", "/api/v1/users/me", {"password": PASSWORD}),
]


@pytest.mark.parametrize(("method", "path", "body"), HASHING_REQUESTS)
def test_a_request_that_hashes_gets_503_when_every_slot_is_taken(
    app_factory: AppFactory, method: str, path: str, body: dict[str, str]
) -> None:
    app = app_factory(HASHING_SLOTS=2)
    client = app.test_client()
    tokens = register_and_login(client, "owner@example.com")
    slots: HashingSlots = app.extensions[HASHING_KEY]
    with slots.slot(), slots.slot():
        busy = client.open(path, method=method, json=body, headers=bearer(tokens["access_token"]))
        assert_problem(busy, 503, "hashing_busy")
        assert busy.headers["Retry-After"] == "1"
        # Requests that hash nothing are served meanwhile.
        assert client.get("/health/live").status_code == 200
        me = client.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200
    # Freed slots serve the next request.
    again = client.open(path, method=method, json=body, headers=bearer(tokens["access_token"]))
    assert again.status_code != 503


def test_one_free_slot_serves_requests_one_after_another(app_factory: AppFactory) -> None:
    app = app_factory(HASHING_SLOTS=1)
    client = app.test_client()
    with app.extensions[HASHING_KEY].slot():
        pass
    for number in range(3):
        register_and_login(client, f"serial{number}@example.com")


def test_a_rate_limited_request_takes_no_slot(app_factory: AppFactory) -> None:
    app = app_factory(HASHING_SLOTS=1, RATELIMIT_LOGIN="1 per minute")
    client = app.test_client()
    body = {"email": "n@example.com", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=body).status_code == 401
    with app.extensions[HASHING_KEY].slot():
        assert_problem(client.post("/api/v1/auth/login", json=body), 429, "rate_limited")
