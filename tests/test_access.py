"""The per-request access check (services/access.py), called with a token's claims."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask_jwt_extended import decode_token

from project.core import errors
from project.models import User
from project.services import access

Login = Callable[..., dict[str, Any]]


@pytest.fixture
def claims(app: Flask, make_user: Callable[..., User], login: Login) -> dict[str, Any]:
    """The verified claims of a fresh access token."""
    token = login(make_user().email)["access_token"]
    with app.app_context():
        return dict(decode_token(token))


def test_a_live_sessions_token_names_its_user(app: Flask, claims: dict[str, Any]) -> None:
    with app.test_request_context():
        user = access.check(claims, count=True)
        assert str(user.id) == claims["sub"] and user.is_active
        # Warm now (a copy in Redis, where there is one): the same user again.
        assert access.check(claims, count=True).id == user.id


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"type": "refresh"}, access.ENDED),
        ({"sub": "not-a-uuid"}, access.ENDED),
        ({"sid": 7}, access.ENDED),
        ({"ver": True}, access.ENDED),
        ({"ver": "0"}, access.ENDED),
        ({"ver": 1}, access.VOIDED),
    ],
)
def test_bad_claims_are_refused(
    app: Flask, claims: dict[str, Any], changes: dict[str, Any], detail: str
) -> None:
    with app.test_request_context(), pytest.raises(errors.TokenRevoked) as refused:
        access.check({**claims, **changes}, count=True)
    assert refused.value.detail == detail
