"""Per-address limits count an IPv6 client per network (RATELIMIT_IPV6_PREFIX), IPv4 per address."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from project.core.networks import address_key
from tests.conftest import PASSWORD, build_app, make_settings

AppFactory = Callable[..., Flask]


@pytest.mark.parametrize(
    ("prefix", "ip", "key"),
    [
        (64, "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        (64, "2001:DB8:1:2::ffff", "2001:db8:1:2::/64"),
        (64, "fe80::1%eth0", "fe80::/64"),
        (56, "2001:db8:1:2ff::1", "2001:db8:1:200::/56"),
        (128, "2001:db8::1", "2001:db8::1/128"),
        (64, "::ffff:192.0.2.7", "192.0.2.7"),
        (64, "192.0.2.7", "192.0.2.7"),
        (64, None, "-"),
    ],
)
def test_address_key(prefix: int, ip: str | None, key: str) -> None:
    with build_app(make_settings(RATELIMIT_IPV6_PREFIX=prefix)).app_context():
        assert address_key(ip) == key


def _register(app: Flask, address: str, number: int) -> int:
    response = app.test_client().post(
        "/api/v1/auth/register",
        json={"email": f"net{number}@example.com", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_one_ipv6_network_shares_a_rate_limit(app_factory: AppFactory) -> None:
    app = app_factory(RATELIMIT_REGISTER="2 per minute")
    same_network = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
    assert [_register(app, address, n) for n, address in enumerate(same_network)] == [
        201,
        201,
        429,
    ]
    # Another /64 is another client, with a budget of its own.
    assert _register(app, "2001:db8:1:3::1", 10) == 201


def _failed_login(app: Flask, address: str) -> int:
    response = app.test_client().post(
        "/api/v1/auth/login",
        json={"email": "target@example.com", "password": "not the password"},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_one_ipv6_network_shares_a_login_backoff(app_factory: AppFactory) -> None:
    app = app_factory(LOGIN_FREE_FAILURES_PER_IP=2, LOGIN_FREE_FAILURES_PER_ACCOUNT=1000)
    assert _failed_login(app, "2001:db8:5:6::1") == 401
    assert _failed_login(app, "2001:db8:5:6::2") == 401
    assert _failed_login(app, "2001:db8:5:6::3") == 401  # the third failure starts the wait
    assert _failed_login(app, "2001:db8:5:6:1234::9") == 429
    assert _failed_login(app, "2001:db8:5:7::1") == 401
