"""Concurrent use cases on one user or on the admins: PostgreSQL decides, nothing breaks.

Two kinds of test. Where an interleaving can be forced, another connection holds the
user's row while a request waits on it, and changes the row before letting go: the
outcome is then certain. Elsewhere requests start together from a barrier, many rounds,
and every round must leave a consistent state and answer without a 5xx; a use case
without its locks fails a few rounds out of thirty.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, func, select, update

from project.core import security
from project.extensions import db
from project.models import Role, Session, TokenPurpose, User
from project.services import one_time_tokens
from tests.conftest import (
    PASSWORD,
    assert_problem,
    bearer,
    is_postgres,
    wait_for_a_lock_wait,
)

pytestmark = pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL's row locks")

NEW_PASSWORD = "a brand new pass phrase 42"
ROUNDS = 20
Call = Callable[[FlaskClient], Any]


def race(app: Flask, *calls: Call) -> list[Any]:
    """Run each call in its own thread, released together; return their results."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        client = app.test_client()
        start.wait()
        results[index] = calls[index](client)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@contextmanager
def row_held(app: Flask, user_id: uuid.UUID) -> Iterator[Connection]:
    """Hold a user's row locked in another connection; commit on leaving."""
    with app.app_context():
        engine = db.engine
    with engine.connect() as other:
        other.execute(select(User.id).where(User.id == user_id).with_for_update())
        yield other
        other.commit()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start ``call`` in a thread; its result lands in the returned list."""
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(call()))
    thread.start()
    return thread, results


def sessions_of(app: Flask, user_id: uuid.UUID) -> int:
    """How many live sessions the user has."""
    with app.app_context():
        return int(
            db.session.scalar(
                select(func.count()).where(Session.user_id == user_id, Session.revoked_at.is_(None))
            )
            or 0
        )


def new_hash() -> str:
    return security.hash_password(NEW_PASSWORD, rounds=4)


def test_a_login_checked_against_a_password_changed_meanwhile_is_refused(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    with app.app_context():
        engine = db.engine
    with row_held(app, user.id) as other:
        thread, answers = in_thread(
            lambda: client.post(
                "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
            )
        )
        wait_for_a_lock_wait(engine)  # the password checked out; the login waits on the row
        other.execute(update(User).where(User.id == user.id).values(password_hash=new_hash()))
    thread.join(timeout=10)
    assert_problem(answers[0], 401, "invalid_credentials")
    assert sessions_of(app, user.id) == 0


def test_a_password_change_checked_against_a_reset_meanwhile_is_refused(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    user = make_user()
    headers = bearer(login(user.email)["access_token"])
    with app.app_context():
        engine = db.engine
    with row_held(app, user.id) as other:
        thread, answers = in_thread(
            lambda: client.post(
                "/api/v1/users/me/password",
                json={"current_password": PASSWORD, "new_password": "yet another pass phrase"},
                headers=headers,
            )
        )
        wait_for_a_lock_wait(engine)
        other.execute(update(User).where(User.id == user.id).values(password_hash=new_hash()))
    thread.join(timeout=10)
    assert_problem(answers[0], 401, "invalid_credentials")
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored is not None and security.verify_password(NEW_PASSWORD, stored.password_hash)


def test_a_login_racing_a_password_reset_never_survives_it(
    app: Flask, make_user: Callable[..., User]
) -> None:
    for _ in range(ROUNDS):
        _login_against_reset(app, make_user())


def _login_against_reset(app: Flask, user: User) -> None:
    with app.app_context():
        token = one_time_tokens.issue(user.id, TokenPurpose.RESET_PASSWORD, ttl=600)
        db.session.commit()
    logged_in, reset = race(
        app,
        lambda c: c.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}),
        lambda c: c.post(
            "/api/v1/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
        ),
    )
    assert reset.status_code == 204 and logged_in.status_code in (200, 401)
    # Whichever came first, the reset ends every session, a login's included.
    assert sessions_of(app, user.id) == 0
    if logged_in.status_code == 200:
        refreshed = app.test_client().post(
            "/api/v1/auth/refresh", headers=bearer(logged_in.json["refresh_token"])
        )
        assert refreshed.status_code == 401


def test_three_concurrent_admin_changes_leave_an_active_admin(
    app: Flask, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    """The only admin promotes a user, deactivates that user and demotes itself, at once."""
    for _ in range(3 * ROUNDS):  # without the admin lock, about 3 % of rounds lose the last admin
        with app.app_context():
            db.session.execute(update(User).values(role=Role.USER))
            db.session.commit()
        admin, other = make_user(role=Role.ADMIN), make_user()
        _admin_changes(app, admin, other, bearer(login(admin.email)["access_token"]))


def _admin_changes(app: Flask, admin: User, other: User, headers: dict[str, str]) -> None:
    answers = race(
        app,
        lambda c: c.patch(f"/api/v1/users/{other.id}", json={"role": "admin"}, headers=headers),
        lambda c: c.patch(f"/api/v1/users/{other.id}", json={"is_active": False}, headers=headers),
        lambda c: c.patch(f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=headers),
    )
    # 401: the demotion went first and voided the admin's token.
    assert all(answer.status_code in (200, 401, 409) for answer in answers), answers
    with app.app_context():
        active_admins = db.session.scalar(
            select(func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
    # Two when a removal counted the admins before the promotion committed and refused.
    assert active_admins in (1, 2)


@pytest.mark.parametrize(
    "change",
    ["admin_patch", "own_patch", "own_password", "login", "verify_email", "reset_password"],
)
def test_a_change_racing_the_account_deletion_answers_without_a_server_error(
    app: Flask,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
    admin_headers: dict[str, str],
    change: str,
) -> None:
    for _ in range(ROUNDS):
        user = make_user()
        _change_against_deletion(
            app, user, bearer(login(user.email)["access_token"]), admin_headers, change
        )


def _change_against_deletion(
    app: Flask, user: User, headers: dict[str, str], admin_headers: dict[str, str], change: str
) -> None:
    purpose = TokenPurpose.VERIFY_EMAIL if change == "verify_email" else TokenPurpose.RESET_PASSWORD
    with app.app_context():
        token = one_time_tokens.issue(user.id, purpose, ttl=600)
        db.session.commit()
    calls: dict[str, Call] = {
        "admin_patch": lambda c: c.patch(
            f"/api/v1/users/{user.id}", json={"full_name": "X"}, headers=admin_headers
        ),
        "own_patch": lambda c: c.patch(
            "/api/v1/users/me", json={"full_name": "X"}, headers=headers
        ),
        "own_password": lambda c: c.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=headers,
        ),
        "login": lambda c: c.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        ),
        "verify_email": lambda c: c.post("/api/v1/auth/verify-email", json={"token": token}),
        "reset_password": lambda c: c.post(
            "/api/v1/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
        ),
    }
    deleted, changed = race(
        app,
        lambda c: c.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=headers),
        calls[change],
    )
    # 401 for the deletion: a password change or reset went first.
    assert deleted.status_code in (204, 401), deleted.get_data(as_text=True)
    assert changed.status_code < 500, changed.get_data(as_text=True)
    with app.app_context():
        gone = db.session.get(User, user.id) is None
    assert gone == (deleted.status_code == 204)
    if gone:
        assert sessions_of(app, user.id) == 0


def test_one_session_revoked_twice_at_once_is_revoked_once(
    app: Flask, make_user: Callable[..., User], login: Callable[..., dict[str, Any]]
) -> None:
    for _ in range(ROUNDS):
        user = make_user()
        headers = bearer(login(user.email)["access_token"])
        login(user.email)  # the session to end, from another device
        with app.app_context():
            newest = db.session.scalar(
                select(Session.id)
                .where(Session.user_id == user.id)
                .order_by(Session.created_at.desc())
                .limit(1)
            )
        assert newest is not None
        _revoke_twice(app, newest, headers)


def _revoke_twice(app: Flask, session_id: uuid.UUID, headers: dict[str, str]) -> None:
    path = f"/api/v1/auth/sessions/{session_id}"
    answers = race(app, *[lambda c: c.delete(path, headers=headers)] * 2)
    assert sorted(answer.status_code for answer in answers) == [204, 404]
