"""The caller's own account and admin user management through the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from project.core.security import hash_password
from project.extensions import db
from project.models import Role, User
from project.services import users as users_service
from tests.conftest import PASSWORD, assert_problem, bearer, in_autocommit

Login = Callable[..., dict[str, Any]]
MakeUser = Callable[..., User]


def test_get_and_update_own_profile(client: FlaskClient, user_headers: dict[str, str]) -> None:
    before = client.get("/api/v1/users/me", headers=user_headers).json
    response = client.patch(
        "/api/v1/users/me", json={"full_name": "  Grace Hopper "}, headers=user_headers
    )
    assert response.status_code == 200
    assert response.json["full_name"] == "Grace Hopper"
    assert response.json["updated_at"] >= before["updated_at"]
    assert client.get("/api/v1/users/me", headers=user_headers).json["full_name"] == "Grace Hopper"


@pytest.mark.parametrize(
    "payload",
    [{"role": "admin"}, {"is_active": False}, {"email_verified": True}, {"id": str(uuid.uuid4())}],
)
def test_users_cannot_mass_assign_privileged_fields(
    client: FlaskClient, user_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    body = assert_problem(
        client.patch("/api/v1/users/me", json=payload, headers=user_headers),
        422,
        "validation_error",
    )
    assert set(body["errors"]) == set(payload)
    me = client.get("/api/v1/users/me", headers=user_headers).json
    assert me["role"] == "user" and me["is_active"] is True and me["email_verified"] is False


def test_password_change_ends_every_other_session(
    client: FlaskClient, make_user: MakeUser, login: Login
) -> None:
    user = make_user()
    current, other = login(user.email), login(user.email)
    response = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 204
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(other["access_token"])), 401, "token_revoked"
    )
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(other["refresh_token"])),
        401,
        "token_revoked",
    )
    # Every access token issued before is void; this session's refresh token still works.
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(current["access_token"])),
        401,
        "token_revoked",
    )
    renewed = client.post("/api/v1/auth/refresh", headers=bearer(current["refresh_token"]))
    assert renewed.status_code == 200
    assert (
        client.get("/api/v1/users/me", headers=bearer(renewed.json["access_token"])).status_code
        == 200
    )
    assert_problem(
        client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    login(user.email, "a brand new secret")


def test_password_change_needs_the_current_password(
    client: FlaskClient, make_user: MakeUser, login: Login
) -> None:
    user = make_user()
    headers = bearer(login(user.email)["access_token"])
    response = client.post(
        "/api/v1/users/me/password",
        json={"current_password": "not the password", "new_password": "a brand new secret"},
        headers=headers,
    )
    assert_problem(response, 401, "invalid_credentials")
    weak = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=headers,
    )
    assert "new_password" in assert_problem(weak, 422, "validation_error")["errors"]
    login(user.email)


def test_delete_own_account(client: FlaskClient, make_user: MakeUser, login: Login) -> None:
    user = make_user()
    tokens, other = login(user.email), login(user.email)
    headers = bearer(tokens["access_token"])
    wrong = client.delete("/api/v1/users/me", json={"password": "wrong password"}, headers=headers)
    assert_problem(wrong, 401, "invalid_credentials")
    assert (
        client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=headers).status_code
        == 204
    )
    for token in (tokens["access_token"], other["access_token"]):
        assert_problem(client.get("/api/v1/users/me", headers=bearer(token)), 401, "token_revoked")
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(other["refresh_token"])),
        401,
        "token_revoked",
    )
    assert_problem(
        client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    # The email is free again.
    again = client.post("/api/v1/auth/register", json={"email": user.email, "password": PASSWORD})
    assert again.status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/users"),
        ("get", f"/api/v1/users/{uuid.uuid4()}"),
        ("patch", f"/api/v1/users/{uuid.uuid4()}"),
        ("delete", f"/api/v1/users/{uuid.uuid4()}"),
    ],
)
def test_admin_routes_refuse_normal_users(
    client: FlaskClient, user_headers: dict[str, str], method: str, path: str
) -> None:
    response = getattr(client, method)(
        path, headers=user_headers, json={} if method == "patch" else None
    )
    assert_problem(response, 403, "forbidden")
    assert_problem(getattr(client, method)(path), 401, "authorization_required")


def test_admin_list_pages_through_every_user_once(
    client: FlaskClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    created = {str(make_user().id) for _ in range(7)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/users", query_string=query, headers=admin_headers)
        assert response.status_code == 200
        seen += [item["id"] for item in response.json["items"]]
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert pages == 3  # 8 users (7 + the admin) in pages of 3
    assert len(seen) == len(set(seen)) == 8
    assert created < set(seen)
    default = client.get("/api/v1/users", headers=admin_headers).json
    assert [item["id"] for item in default["items"]] == seen
    assert default["next_cursor"] is None


def test_admin_list_filters(
    client: FlaskClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    make_user(email="alpha.one@example.com")
    make_user(email="Alpha.Two@example.com", is_active=False)
    make_user(email="beta@example.com")
    make_user(email="al_pha@example.com")

    def emails(**query: Any) -> list[str]:
        response = client.get("/api/v1/users", query_string=query, headers=admin_headers)
        assert response.status_code == 200, response.json
        return sorted(item["email"].lower() for item in response.json["items"])

    assert emails(email="ALPHA") == ["alpha.one@example.com", "alpha.two@example.com"]
    assert emails(email="al_") == ["al_pha@example.com"]  # LIKE wildcards are literal
    assert emails(email="alpha", is_active="false") == ["alpha.two@example.com"]
    assert emails(role="admin") == [e for e in emails() if e.startswith("user")]
    assert "beta@example.com" in emails(role="user", is_active="true")


def test_admin_list_filtered_by_email_pages_in_email_order(
    client: FlaskClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    for name in ("page-c", "page-a", "page-d", "page-b", "other"):  # created in this order
        make_user(email=f"{name}@example.com")

    def page(**query: Any) -> dict[str, Any]:
        response = client.get("/api/v1/users", query_string=query, headers=admin_headers)
        assert response.status_code == 200, response.json
        return response.json  # type: ignore[no-any-return]

    first = page(email="PAGE-", limit=3)
    assert [item["email"] for item in first["items"]] == [
        "page-a@example.com",
        "page-b@example.com",
        "page-c@example.com",
    ]
    rest = page(email="page-", limit=3, cursor=first["next_cursor"])
    assert [item["email"] for item in rest["items"]] == ["page-d@example.com"]
    assert rest["next_cursor"] is None
    by_age = page(limit=1)
    # A cursor continues only the order it came from.
    for query in (
        {"cursor": first["next_cursor"]},
        {"cursor": by_age["next_cursor"], "email": "page-"},
    ):
        response = client.get("/api/v1/users", query_string=query, headers=admin_headers)
        assert "cursor" in assert_problem(response, 422, "validation_error")["errors"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "garbage!!"}, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, "cursor"),
        ({"cursor": "WyJlbWFpbCIsIDVd", "email": "a"}, "cursor"),  # ["email", 5]
        ({"role": "root"}, "role"),
        ({"is_active": "maybe"}, "is_active"),
        ({"sort": "email"}, "sort"),
    ],
)
def test_admin_list_rejects_bad_queries(
    client: FlaskClient, admin_headers: dict[str, str], query: dict[str, Any], field: str
) -> None:
    response = client.get("/api/v1/users", query_string=query, headers=admin_headers)
    assert field in assert_problem(response, 422, "validation_error")["errors"]


def test_admin_gets_updates_and_deletes_a_user(
    client: FlaskClient, make_user: MakeUser, login: Login, admin_headers: dict[str, str]
) -> None:
    user = make_user()
    tokens = login(user.email)
    path = f"/api/v1/users/{user.id}"
    assert client.get(path, headers=admin_headers).json["email"] == user.email

    promoted = client.patch(path, json={"role": "admin", "full_name": "Ada"}, headers=admin_headers)
    assert promoted.status_code == 200
    assert promoted.json["role"] == "admin" and promoted.json["full_name"] == "Ada"
    # Tokens issued under the old role are void at once; a refresh picks up the new role.
    stale = assert_problem(
        client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])), 401, "token_revoked"
    )
    assert "refresh" in stale["detail"] and "ended" not in stale["detail"]
    tokens = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).json
    assert client.get("/api/v1/users", headers=bearer(tokens["access_token"])).status_code == 200

    deactivated = client.patch(path, json={"is_active": False}, headers=admin_headers)
    assert deactivated.json["is_active"] is False
    ended = assert_problem(
        client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])), 401, "token_revoked"
    )
    assert ended["detail"] == "This session has ended."
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
        401,
        "token_revoked",
    )
    # Reactivation brings no session back: deactivation ended them, not just paused them.
    reactivated = client.patch(path, json={"is_active": True}, headers=admin_headers)
    assert reactivated.json["is_active"] is True
    assert_problem(
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
        401,
        "token_revoked",
    )

    assert client.delete(path, headers=admin_headers).status_code == 204
    assert_problem(client.get(path, headers=admin_headers), 404, "not_found")
    assert_problem(client.delete(path, headers=admin_headers), 404, "not_found")
    assert_problem(
        client.patch(path, json={"full_name": "x"}, headers=admin_headers), 404, "not_found"
    )


def test_admin_update_validation(
    client: FlaskClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    path = f"/api/v1/users/{make_user().id}"
    for payload in ({"role": "superuser"}, {"is_active": "perhaps"}, {"email": "x@example.com"}):
        assert_problem(
            client.patch(path, json=payload, headers=admin_headers), 422, "validation_error"
        )
    assert_problem(client.get("/api/v1/users/not-a-uuid", headers=admin_headers), 404, "not_found")


def test_the_last_active_admin_cannot_be_removed(
    client: FlaskClient,
    admin: User,
    admin_headers: dict[str, str],
    make_user: MakeUser,
    login: Login,
) -> None:
    path = f"/api/v1/users/{admin.id}"
    for payload in ({"role": "user"}, {"is_active": False}):
        assert_problem(client.patch(path, json=payload, headers=admin_headers), 409, "last_admin")
    assert_problem(client.delete(path, headers=admin_headers), 409, "last_admin")
    assert_problem(
        client.delete("/api/v1/users/me", json={"password": PASSWORD}, headers=admin_headers),
        409,
        "last_admin",
    )
    second = make_user(role=Role.ADMIN)
    assert (
        client.patch(
            path, json={"role": "user"}, headers=bearer(login(second.email)["access_token"])
        ).status_code
        == 200
    )


def test_the_admin_list_reads_outside_a_transaction_and_hands_one_back(
    app: Flask, make_user: MakeUser
) -> None:
    make_user(email="solo@example.com")
    returned: list[bool] = []

    def on_checkin(raw: Any, _record: object) -> None:
        returned.append(in_autocommit(raw))

    with app.app_context():
        event.listen(db.engine, "checkin", on_checkin)
    try:
        with app.test_request_context():
            page = users_service.list_users(limit=5)
            assert [user.email for user in page.items] == ["solo@example.com"]
            # One SELECT, no BEGIN and no ROLLBACK around it.
            assert in_autocommit(db.session.connection().connection.dbapi_connection)
            db.session.remove()
    finally:
        with app.app_context():
            event.remove(db.engine, "checkin", on_checkin)
    # The connection went back to the pool transactional, for the next use case.
    assert returned == [False]


def test_a_password_change_to_the_same_password_is_refused(
    client: FlaskClient, user_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=user_headers,
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == {"new_password": ["Must differ from the current password."]}
    # Nothing happened: the token still works.
    assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200


def test_a_password_in_another_unicode_spelling_is_the_same_password(
    client: FlaskClient, make_user: MakeUser, login: Login
) -> None:
    user = make_user(password="Ko\u0308nig-Fjord-Swan-47")
    headers = bearer(login(user.email, "Ko\u0308nig-Fjord-Swan-47")["access_token"])
    response = client.post(
        "/api/v1/users/me/password",
        json={
            "current_password": "Ko\u0308nig-Fjord-Swan-47",
            "new_password": "König-Fjord-Swan-47",
        },
        headers=headers,
    )
    assert_problem(response, 422, "validation_error")


def test_an_address_that_lower_cases_to_another_is_the_same_address(
    client: FlaskClient, make_user: MakeUser
) -> None:
    # The Kelvin sign composes (NFC) to a K: kate's address, not a second one.
    make_user(email="kate@example.com")
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "\u212aate@example.com", "password": PASSWORD},
    )
    assert_problem(response, 409, "email_taken")


def test_an_account_stored_with_an_address_now_refused_still_signs_in(
    app: Flask, client: FlaskClient
) -> None:
    # As an older release stored it (migration 0005 leaves such rows as they were).
    with app.app_context():
        db.session.add(
            User(
                email="Root@localhost",
                email_normalized="root@localhost",
                password_hash=hash_password(PASSWORD, rounds=4),
            )
        )
        db.session.commit()
    refused = client.post(
        "/api/v1/auth/register", json={"email": "other@localhost", "password": PASSWORD}
    )
    assert "period" in assert_problem(refused, 422, "validation_error")["errors"]["email"][0]
    response = client.post(
        "/api/v1/auth/login", json={"email": "ROOT@localhost", "password": PASSWORD}
    )
    assert response.status_code == 200, response.json
    forgot = client.post("/api/v1/auth/password/forgot", json={"email": "root@localhost"})
    assert forgot.status_code == 202


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("bob@exämple.com", "Bob@XN--exmple-cua.com"),
        ("ann@xn--bcher-kva.de", "ann@bücher.de"),
        ("eve@xn--bcher-kva.exämple.de", "eve@bücher.xn--exmple-cua.de"),
    ],
)
def test_an_internationalized_domain_is_not_claimed_twice_in_another_spelling(
    client: FlaskClient, first: str, second: str
) -> None:
    def register(email: str) -> Any:
        return client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})

    assert register(first).status_code == 201
    assert_problem(register(second), 409, "email_taken")


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("victim@exa\u00admple.com", "SOFT HYPHEN"),
        ("bob@ex\u200bämple.com", "ZERO WIDTH SPACE"),
        ("bob@exa\u2060mple.com", "WORD JOINER"),
        ("victim@example.co" + "\u00ad" * 62 + "m", "SOFT HYPHEN"),
        ("victim@exa\u200dmple.com", "ZERO WIDTH JOINER"),
    ],
)
def test_a_domain_with_characters_idna_drops_is_refused(
    client: FlaskClient, email: str, reason: str
) -> None:
    # IDNA maps these onto example.com and exämple.com: another spelling of those mailboxes.
    response = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    body = assert_problem(response, 422, "validation_error")
    assert reason in body["errors"]["email"][0]


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        ("Bob@EXÄMPLE.com", "Bob@exämple.com"),
        ("bob@xn--exmple-cua.com", "bob@exämple.com"),
        ("ann@bücher.xn--exmple-cua.de", "ann@bücher.exämple.de"),
        ("a@ᏣᎳᎩ.com", "a@ᏣᎳᎩ.com"),  # Cherokee is valid IDNA only in capitals
        ("bob@ΟΔΟΣ-1.gr", "bob@οδοσ-1.gr"),  # UTS 46 maps a capital sigma to a small one
    ],
)
def test_a_domain_in_ascii_unicode_or_mixed_spelling_is_accepted(
    client: FlaskClient, email: str, stored: str
) -> None:
    response = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.json
    assert response.json["email"] == stored
