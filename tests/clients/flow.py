"""Warden's account flows through the client openapi-python-client generates.

tests/test_generated_clients.py runs ``python flow.py BASE_URL`` next to the generated
``warden_client`` package, with WARDEN_ADMIN_EMAIL and WARDEN_ADMIN_PASSWORD set. Each step
prints one line; any surprise exits non-zero. Types are narrowed by checks, never cast.
"""

from __future__ import annotations

import os
import sys
from http import HTTPStatus
from typing import TypeVar

from warden_client import AuthenticatedClient, Client
from warden_client.api.auth import list_sessions, login, logout, refresh, register
from warden_client.api.users import get_me, list_users
from warden_client.models import BearerTokens, Login, Problem, Register, User, UserPage
from warden_client.types import UNSET, Unset

T = TypeVar("T")
EMAIL = "python-flow@example.com"
PASSWORD = "a walk in the park at dawn"


def expect(value: object, kind: type[T], step: str) -> T:
    """``value`` as a ``kind``, or stop the flow saying what came instead."""
    if not isinstance(value, kind):
        raise SystemExit(f"{step}: expected {kind.__name__}, got {value!r}")
    return value


def bearer(base_url: str, token: str) -> AuthenticatedClient:
    """A client that sends ``token`` as its Bearer token."""
    return AuthenticatedClient(base_url=base_url, token=token)


def log_in(anonymous: Client, email: str, password: str) -> BearerTokens:
    """The token pair of a Bearer-mode login."""
    answer = login.sync(client=anonymous, body=Login(email=email, password=password))
    return expect(answer, BearerTokens, f"login {email}")


def walk_users(admin: AuthenticatedClient) -> tuple[list[str], int]:
    """Every user's email, page by page until no next cursor; and the number of pages."""
    emails: list[str] = []
    pages = 0
    cursor: str | Unset = UNSET
    while True:
        page = expect(list_users.sync(client=admin, limit=3, cursor=cursor), UserPage, "users")
        emails.extend(user.email for user in page.items)
        pages += 1
        if page.next_cursor is None:
            return emails, pages
        cursor = page.next_cursor


def main(base_url: str, admin_email: str, admin_password: str) -> None:
    """Register, log in, read, refresh, list sessions, log out, read a problem, page users."""
    anonymous = Client(base_url=base_url)
    created = register.sync(client=anonymous, body=Register(email=EMAIL, password=PASSWORD))
    user = expect(created, User, "register")
    print(f"registered {user.email}")

    tokens = log_in(anonymous, EMAIL, PASSWORD)
    print(f"logged in, access token valid {tokens.expires_in} s")

    me = expect(get_me.sync(client=bearer(base_url, tokens.access_token)), User, "me")
    if me.id != user.id:
        raise SystemExit(f"/users/me is {me.id}, registered {user.id}")
    print(f"me: {me.email} ({me.role})")

    refreshed = refresh.sync(client=bearer(base_url, tokens.refresh_token))
    session = bearer(base_url, expect(refreshed, BearerTokens, "refresh").access_token)
    print("refreshed the token pair")

    sessions = list_sessions.sync(client=session)
    if not isinstance(sessions, list):
        raise SystemExit(f"sessions: expected a list, got {sessions!r}")
    current = [entry.id for entry in sessions if entry.current]
    print(f"sessions: {len(sessions)}, current: {len(current)}")

    ended = logout.sync_detailed(client=session)
    if ended.status_code != HTTPStatus.NO_CONTENT:
        raise SystemExit(f"logout answered {ended.status_code}")
    print("logged out")

    refused = get_me.sync_detailed(client=session)
    problem = expect(refused.parsed, Problem, "me after logout")
    if refused.status_code != HTTPStatus.UNAUTHORIZED or problem.status != refused.status_code:
        raise SystemExit(f"me after logout answered {refused.status_code}: {problem!r}")
    print(f"problem: {problem.status} {problem.code}")

    admin = bearer(base_url, log_in(anonymous, admin_email, admin_password).access_token)
    emails, pages = walk_users(admin)
    if len(set(emails)) != len(emails) or EMAIL not in emails:
        raise SystemExit(f"the walk over users repeats or misses one: {emails}")
    print(f"listed {len(emails)} users on {pages} pages")


if __name__ == "__main__":
    main(sys.argv[1], os.environ["WARDEN_ADMIN_EMAIL"], os.environ["WARDEN_ADMIN_PASSWORD"])
