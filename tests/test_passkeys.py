"""Passkeys through the API, answered by the software authenticator of tests/authenticator.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from config import ConfigError, load_settings
from project.extensions import db
from project.models import User, WebAuthnChallenge
from project.models.types import utcnow
from tests.authenticator import Authenticator, b64url, unb64url
from tests.conftest import PASSWORD, assert_problem, bearer, is_postgres
from tests.test_races import race

ORIGIN = "https://app.example.com"  # FRONTEND_URL of the suite: RP id and origin derive from it
API = "/api/v1/auth/passkeys"


def register_passkey(
    client: FlaskClient, headers: dict[str, str], device: Authenticator, **body: Any
) -> Any:
    started = client.post(f"{API}/register/options", headers=headers)
    assert started.status_code == 200, started.json
    answer = device.create(started.json["options"])
    return client.post(
        f"{API}/register/verify",
        headers=headers,
        json={"ceremony": started.json["ceremony"], "credential": answer, **body},
    )


def passkey_sign_in(client: FlaskClient, device: Authenticator, **get: Any) -> Any:
    started = client.post(f"{API}/authenticate/options", json={})
    assert started.status_code == 200, started.json
    answer = device.get(started.json["options"], **get)
    return client.post(
        f"{API}/authenticate/verify",
        json={"ceremony": started.json["ceremony"], "credential": answer},
    )


@pytest.fixture
def device() -> Authenticator:
    return Authenticator(origin=ORIGIN)


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user(full_name="Ada Lovelace")


@pytest.fixture
def headers(user: User, login: Callable[..., dict[str, Any]]) -> dict[str, str]:
    return bearer(login(user.email)["access_token"])


def events(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/v1/users/me/events", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]  # type: ignore[no-any-return]


def test_registration_options_ask_for_a_discoverable_verified_passkey(
    client: FlaskClient, user: User, headers: dict[str, str]
) -> None:
    started = client.post(f"{API}/register/options", headers=headers)
    assert started.status_code == 200
    options = started.json["options"]
    assert options["rp"] == {"id": "app.example.com", "name": "Warden"}
    assert options["user"]["name"] == user.email
    assert options["user"]["displayName"] == "Ada Lovelace"
    assert options["user"]["id"] == b64url(user.id.bytes)
    selection = options["authenticatorSelection"]
    assert selection["residentKey"] == "required"
    assert selection["userVerification"] == "required"
    assert len(options["challenge"]) >= 22  # at least 16 random bytes


def test_register_list_rename_and_delete(
    client: FlaskClient,
    user: User,
    headers: dict[str, str],
    device: Authenticator,
    login: Callable[..., dict[str, Any]],
) -> None:
    other = login(user.email)
    created = register_passkey(client, headers, device, name="  Laptop  ")
    assert created.status_code == 201, created.json
    passkey = created.json
    assert passkey["name"] == "Laptop" and passkey["transports"] == ["internal"]
    assert passkey["last_used_at"] is None
    # Enrolling a factor ends the user's other sessions, not this one.
    assert_problem(
        client.get("/api/v1/users/me", headers=bearer(other["access_token"])), 401, "token_revoked"
    )
    listed = client.get(API, headers=headers)
    assert listed.status_code == 200 and [p["id"] for p in listed.json] == [passkey["id"]]

    renamed = client.patch(f"{API}/{passkey['id']}", headers=headers, json={"name": "Phone"})
    assert renamed.status_code == 200 and renamed.json["name"] == "Phone"
    assert_problem(
        client.patch(f"{API}/{passkey['id']}", headers=headers, json={"name": ""}),
        422,
        "validation_error",
    )

    # The passkey made this session old news: a fresh passkey sign-in may remove it.
    signed_in = passkey_sign_in(client, device)
    assert signed_in.status_code == 200, signed_in.json
    fresh = bearer(signed_in.json["access_token"])
    removed = client.delete(f"{API}/{passkey['id']}", headers=fresh)
    assert removed.status_code == 204, removed.json
    assert client.get(API, headers=fresh).json == []
    assert_problem(client.delete(f"{API}/{passkey['id']}", headers=fresh), 404, "not_found")
    kinds = [event["event_type"] for event in events(client, fresh)]
    for kind in ("passkey.registered", "passkey.renamed", "passkey.removed"):
        assert kind in kinds


def test_another_users_passkey_is_not_found(
    client: FlaskClient,
    headers: dict[str, str],
    device: Authenticator,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    created = register_passkey(client, headers, device)
    assert created.status_code == 201
    stranger = bearer(login(make_user().email)["access_token"])
    assert client.get(API, headers=stranger).json == []
    url = f"{API}/{created.json['id']}"
    assert_problem(client.patch(url, headers=stranger, json={"name": "x"}), 404, "not_found")
    assert_problem(client.delete(url, headers=stranger), 404, "not_found")


def test_sign_in_with_a_discoverable_passkey(
    client: FlaskClient, user: User, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    started = client.post(f"{API}/authenticate/options", json={})
    assert started.json["options"]["allowCredentials"] == []  # no email: any passkey may answer
    assert started.json["options"]["userVerification"] == "required"
    signed_in = client.post(
        f"{API}/authenticate/verify",
        json={
            "ceremony": started.json["ceremony"],
            "credential": device.get(started.json["options"]),
        },
    )
    assert signed_in.status_code == 200, signed_in.json
    me = client.get("/api/v1/users/me", headers=bearer(signed_in.json["access_token"]))
    assert me.json["email"] == user.email
    listed = client.get(API, headers=bearer(signed_in.json["access_token"])).json
    assert listed[0]["last_used_at"] is not None


def test_cookie_mode_sign_in(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    started = client.post(f"{API}/authenticate/options", json={})
    signed_in = client.post(
        f"{API}/authenticate/verify?mode=cookie",
        json={
            "ceremony": started.json["ceremony"],
            "credential": device.get(started.json["options"]),
        },
    )
    assert signed_in.status_code == 200 and signed_in.json["token_type"] == "Cookie"


def test_a_challenge_works_once(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    started = client.post(f"{API}/register/options", headers=headers).json
    answer = device.create(started["options"])
    body = {"ceremony": started["ceremony"], "credential": answer}
    assert client.post(f"{API}/register/verify", headers=headers, json=body).status_code == 201
    assert_problem(
        client.post(f"{API}/register/verify", headers=headers, json=body), 400, "invalid_ceremony"
    )
    started = client.post(f"{API}/authenticate/options", json={}).json
    body = {"ceremony": started["ceremony"], "credential": device.get(started["options"])}
    assert client.post(f"{API}/authenticate/verify", json=body).status_code == 200
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 400, "invalid_ceremony")


def test_an_expired_challenge_is_refused(
    app: Flask, client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    started = client.post(f"{API}/authenticate/options", json={}).json
    with app.app_context():
        db.session.execute(
            update(WebAuthnChallenge).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    body = {"ceremony": started["ceremony"], "credential": device.get(started["options"])}
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 400, "invalid_ceremony")


def test_ceremonies_do_not_cross(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    """A registration's challenge does not answer a sign-in, nor the reverse."""
    assert register_passkey(client, headers, device).status_code == 201
    registration = client.post(f"{API}/register/options", headers=headers).json
    answer = device.get({**registration["options"], "rpId": "app.example.com"})
    body = {"ceremony": registration["ceremony"], "credential": answer}
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 400, "invalid_ceremony")
    sign_in = client.post(f"{API}/authenticate/options", json={}).json
    created = Authenticator(origin=ORIGIN).create(registration["options"])
    body = {"ceremony": sign_in["ceremony"], "credential": created}
    assert_problem(
        client.post(f"{API}/register/verify", headers=headers, json=body), 400, "invalid_ceremony"
    )


def test_another_users_registration_ceremony_is_refused(
    client: FlaskClient,
    headers: dict[str, str],
    device: Authenticator,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    started = client.post(f"{API}/register/options", headers=headers).json
    stranger = bearer(login(make_user().email)["access_token"])
    body = {"ceremony": started["ceremony"], "credential": device.create(started["options"])}
    assert_problem(
        client.post(f"{API}/register/verify", headers=stranger, json=body), 400, "invalid_ceremony"
    )


@pytest.mark.parametrize("where", ["origin", "rp_id", "unverified"])
def test_registration_from_the_wrong_place_is_refused(
    client: FlaskClient, headers: dict[str, str], where: str
) -> None:
    device = Authenticator(origin="https://evil.example.net" if where == "origin" else ORIGIN)
    device.user_verified = where != "unverified"
    started = client.post(f"{API}/register/options", headers=headers).json
    options = started["options"]
    if where == "rp_id":
        options = {**options, "rp": {"id": "evil.example.net", "name": "Evil"}}
    body = {"ceremony": started["ceremony"], "credential": device.create(options)}
    assert_problem(
        client.post(f"{API}/register/verify", headers=headers, json=body), 400, "passkey_invalid"
    )
    assert client.get(API, headers=headers).json == []
    assert "passkey.failed" in [event["event_type"] for event in events(client, headers)]


@pytest.mark.parametrize("where", ["origin", "rp_id", "unverified", "signature", "handle"])
def test_sign_in_from_the_wrong_place_is_refused(
    client: FlaskClient, headers: dict[str, str], device: Authenticator, where: str
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    started = client.post(f"{API}/authenticate/options", json={}).json
    device.user_verified = where != "unverified"
    answer = device.get(
        started["options"],
        origin="https://evil.example.net" if where == "origin" else None,
        rp_id="evil.example.net" if where == "rp_id" else None,
    )
    if where == "signature":
        answer["response"]["signature"] = b64url(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    if where == "handle":
        answer["response"]["userHandle"] = b64url(b"someone else")
    body = {"ceremony": started["ceremony"], "credential": answer}
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 401, "passkey_refused")


def test_an_unknown_passkey_is_refused(client: FlaskClient, device: Authenticator) -> None:
    registration = {
        "rp": {"id": "app.example.com"},
        "user": {"id": b64url(b"nobody")},
        "challenge": b64url(b"0" * 16),
    }
    device.create(registration)  # held by the authenticator, never registered
    response = passkey_sign_in(client, device)
    assert_problem(response, 401, "passkey_refused")


def test_a_counter_that_goes_back_is_refused(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    assert passkey_sign_in(client, device).status_code == 200
    assert passkey_sign_in(client, device).status_code == 200
    device.credentials[0].sign_count = 0  # a copy made after the first sign-in
    refused = passkey_sign_in(client, device)
    assert_problem(refused, 401, "passkey_clone_suspected")
    kinds = [event["event_type"] for event in events(client, headers)]
    assert "passkey.clone_suspected" in kinds


def test_an_authenticator_without_a_counter_is_accepted(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    """Counters stay 0 on many synced passkeys; 0 after 0 is no sign of a copy."""
    device = Authenticator(origin=ORIGIN, counts=False)
    assert register_passkey(client, headers, device).status_code == 201
    assert passkey_sign_in(client, device).status_code == 200
    assert passkey_sign_in(client, device).status_code == 200


def test_a_passkey_registers_once(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    started = client.post(f"{API}/register/options", headers=headers).json
    answer = device.create(started["options"])
    body = {"ceremony": started["ceremony"], "credential": answer}
    assert client.post(f"{API}/register/verify", headers=headers, json=body).status_code == 201
    again = client.post(f"{API}/register/options", headers=headers).json
    assert [c["id"] for c in again["options"]["excludeCredentials"]] == [answer["id"]]
    # An authenticator that ignores excludeCredentials and makes the same credential id.
    replay = device.create(again["options"], credential_id=unb64url(answer["id"]))
    body = {"ceremony": again["ceremony"], "credential": replay}
    assert_problem(
        client.post(f"{API}/register/verify", headers=headers, json=body), 409, "passkey_exists"
    )
    # An answer whose id is not the attested one.
    third = client.post(f"{API}/register/options", headers=headers).json
    forged = device.create(third["options"])
    forged["id"] = forged["rawId"] = answer["id"]
    body = {"ceremony": third["ceremony"], "credential": forged}
    assert_problem(
        client.post(f"{API}/register/verify", headers=headers, json=body), 400, "passkey_invalid"
    )
    assert len(client.get(API, headers=headers).json) == 1


def test_a_deactivated_user_cannot_sign_in(
    app: Flask, client: FlaskClient, user: User, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    with app.app_context():
        db.session.execute(update(User).where(User.id == user.id).values(is_active=False))
        db.session.commit()
    assert_problem(passkey_sign_in(client, device), 403, "account_disabled")


GARBAGE: list[Any] = [
    {},
    {"id": "x"},
    {"id": "!!", "rawId": "!!", "type": "public-key", "response": {}},
    {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "bm90IGpzb24", "authenticatorData": "AA", "signature": "AA"},
    },
    {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": 5, "attestationObject": ["x"], "userHandle": 7},
    },
    {"id": 1, "rawId": None, "type": "nope", "response": "x"},
]


@pytest.mark.parametrize("credential", GARBAGE)
def test_malformed_answers_are_problems(
    client: FlaskClient, headers: dict[str, str], credential: Any
) -> None:
    started = client.post(f"{API}/register/options", headers=headers).json
    body = {"ceremony": started["ceremony"], "credential": credential}
    response = client.post(f"{API}/register/verify", headers=headers, json=body)
    assert_problem(response, 400, "passkey_invalid")
    started = client.post(f"{API}/authenticate/options", json={}).json
    body = {"ceremony": started["ceremony"], "credential": credential}
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 401, "passkey_refused")


@pytest.mark.parametrize(
    "body",
    [{}, {"ceremony": "not-a-uuid", "credential": {}}, {"ceremony": None, "credential": []}],
)
def test_bad_bodies_are_validation_errors(client: FlaskClient, body: dict[str, Any]) -> None:
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 422, "validation_error")


def test_unknown_ceremony(client: FlaskClient) -> None:
    body = {"ceremony": "00000000-0000-4000-8000-000000000000", "credential": {}}
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 400, "invalid_ceremony")


def test_management_needs_a_token(client: FlaskClient) -> None:
    assert_problem(client.get(API), 401, "authorization_required")
    assert_problem(client.post(f"{API}/register/options"), 401, "authorization_required")


def test_a_passkey_is_a_factor_and_counts_as_two(
    client: FlaskClient, user: User, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    # The password alone no longer signs in: a challenge that a passkey can answer.
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 202, login.json
    assert "webauthn" in login.json["factors"]
    # A passkey alone does: its session says how.
    signed_in = passkey_sign_in(client, device)
    assert signed_in.status_code == 200
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(signed_in.json["access_token"]))
    current = next(s for s in sessions.json if s["current"])
    assert current["amr"] == ["webauthn"]


def test_a_passkey_answers_a_password_sign_ins_challenge(
    client: FlaskClient, user: User, headers: dict[str, str], device: Authenticator
) -> None:
    created = register_passkey(client, headers, device)
    assert created.status_code == 201
    challenge = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    ).json["challenge"]
    started = client.post(f"{API}/authenticate/options", json={"challenge": challenge})
    assert started.status_code == 200, started.json
    allowed = started.json["options"]["allowCredentials"]
    assert [item["id"] for item in allowed] == [b64url(device.credentials[0].credential_id)]
    body = {
        "challenge": challenge,
        "ceremony": started.json["ceremony"],
        "credential": device.get(started.json["options"]),
    }
    signed_in = client.post(f"{API}/authenticate/verify", json=body)
    assert signed_in.status_code == 200, signed_in.json
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(signed_in.json["access_token"]))
    assert next(s for s in sessions.json if s["current"])["amr"] == ["pwd", "webauthn"]
    # The challenge is spent.
    started = client.post(f"{API}/authenticate/options", json={"challenge": challenge})
    assert_problem(started, 401, "invalid_challenge")


def test_another_users_passkey_does_not_answer_a_challenge(
    client: FlaskClient,
    user: User,
    headers: dict[str, str],
    device: Authenticator,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    victim = make_user()
    victim_headers = bearer(login(victim.email)["access_token"])
    assert register_passkey(client, victim_headers, Authenticator(origin=ORIGIN)).status_code == 201
    challenge = client.post(
        "/api/v1/auth/login", json={"email": victim.email, "password": PASSWORD}
    ).json["challenge"]
    # Started without the challenge (any passkey), answered by the attacker's own passkey.
    started = client.post(f"{API}/authenticate/options", json={}).json
    body = {
        "challenge": challenge,
        "ceremony": started["ceremony"],
        "credential": device.get(started["options"]),
    }
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 401, "passkey_refused")
    # Started with it: the options name only the victim's passkeys, and the attacker's is refused.
    started = client.post(f"{API}/authenticate/options", json={"challenge": challenge}).json
    body = {
        "challenge": challenge,
        "ceremony": started["ceremony"],
        "credential": device.get({**started["options"], "rpId": "app.example.com"}),
    }
    assert_problem(client.post(f"{API}/authenticate/verify", json=body), 401, "passkey_refused")


def test_an_unknown_challenge_is_refused(client: FlaskClient) -> None:
    started = client.post(f"{API}/authenticate/options", json={"challenge": "nope"})
    assert_problem(started, 401, "invalid_challenge")


def test_removing_a_passkey_needs_a_recent_second_factor(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    created = register_passkey(client, headers, device).json
    # This session signed in with the password only, before the passkey existed.
    refused = client.delete(f"{API}/{created['id']}", headers=headers)
    assert_problem(refused, 403, "step_up_required")
    assert len(client.get(API, headers=headers).json) == 1


def test_a_passkey_step_up_allows_the_removal(
    client: FlaskClient,
    headers: dict[str, str],
    device: Authenticator,
    make_user: Callable[..., User],
    login: Callable[..., dict[str, Any]],
) -> None:
    created = register_passkey(client, headers, device).json
    started = client.post(f"{API}/step-up/options", headers=headers)
    assert started.status_code == 200, started.json
    options = started.json["options"]
    assert [item["id"] for item in options["allowCredentials"]] == [created_id(device)]
    # Another user's passkey does not prove this session.
    stranger = Authenticator(origin=ORIGIN)
    stranger_headers = bearer(login(make_user().email)["access_token"])
    assert register_passkey(client, stranger_headers, stranger).status_code == 201
    body = {"ceremony": started.json["ceremony"], "credential": stranger.get(options)}
    assert_problem(
        client.post(f"{API}/step-up/verify", headers=headers, json=body), 401, "passkey_refused"
    )
    assert_problem(
        client.delete(f"{API}/{created['id']}", headers=headers), 403, "step_up_required"
    )
    # The caller's own passkey does, at once: the session row holds the proof.
    started = client.post(f"{API}/step-up/options", headers=headers).json
    body = {"ceremony": started["ceremony"], "credential": device.get(started["options"])}
    assert client.post(f"{API}/step-up/verify", headers=headers, json=body).status_code == 204
    sessions = client.get("/api/v1/auth/sessions", headers=headers).json
    assert next(s for s in sessions if s["current"])["amr"] == ["pwd", "webauthn"]
    assert client.delete(f"{API}/{created['id']}", headers=headers).status_code == 204


def created_id(device: Authenticator) -> str:
    return b64url(device.credentials[0].credential_id)


def test_step_up_without_a_passkey(client: FlaskClient, headers: dict[str, str]) -> None:
    assert_problem(client.post(f"{API}/step-up/options", headers=headers), 404, "not_found")


REPLACEMENTS: list[Any] = [None, 1, -1, 2**70, "", "!!", "AAAA", "A" * 5000, [], {}, True, 1.5]
REPLACEMENTS += [[{}], [[]], ["usb", {"a": 1}]]


def mutations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, replacement) of a JSON value: each member swapped for odd values, and
    each base64url member truncated or with a byte flipped."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [((*path, key), other) for other in REPLACEMENTS]
            found += mutations(item, (*path, key))
    elif isinstance(value, str) and len(value) > 8:
        raw = bytearray(unb64url(value))
        found += [(path, b64url(bytes(raw[: len(raw) // 2])))]
        raw[len(raw) // 2] ^= 0xFF
        found += [(path, b64url(bytes(raw)))]
    return found


def replaced(value: Any, path: tuple[Any, ...], other: Any) -> Any:
    if not path:
        return other
    copy = dict(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], other)
    return copy


def test_mutated_answers_are_problems_never_500(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    """Each member of honest answers swapped or damaged: a problem answer every time."""
    template = device.create(
        client.post(f"{API}/register/options", headers=headers).json["options"]
    )
    accepted: set[tuple[Any, ...]] = set()
    for path, other in mutations(template):
        started = client.post(f"{API}/register/options", headers=headers).json
        credential = replaced(device.create(started["options"]), path, other)
        body = {"ceremony": started["ceremony"], "credential": credential}
        response = client.post(f"{API}/register/verify", headers=headers, json=body)
        assert response.status_code in (201, 400, 409, 422), (path, other, response.json)
        if response.status_code == 201:
            accepted.add(path[:2])
    assert register_passkey(client, headers, device).status_code == 201
    options = client.post(f"{API}/authenticate/options", json={}).json["options"]
    template = device.get(options)
    for path, other in mutations(template):
        started = client.post(f"{API}/authenticate/options", json={}).json
        credential = replaced(device.get(started["options"]), path, other)
        body = {"ceremony": started["ceremony"], "credential": credential}
        response = client.post(f"{API}/authenticate/verify", json=body)
        assert response.status_code in (200, 400, 401, 422), (path, other, response.json)
    # What may change without harm: the hints beside the signed data.
    hints = {("response", "transports"), ("clientExtensionResults",), ("authenticatorAttachment",)}
    assert accepted == hints, accepted


def test_the_account_export_lists_the_passkeys(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    created = register_passkey(client, headers, device, name="Laptop").json
    export = client.get("/api/v1/users/me/export", headers=headers)
    assert export.status_code == 200
    assert export.json["passkeys"] == [created]


def test_an_admin_removes_a_users_passkeys(
    client: FlaskClient,
    user: User,
    headers: dict[str, str],
    device: Authenticator,
    admin_headers: dict[str, str],
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    removed = client.delete(f"/api/v1/users/{user.id}/factors", headers=admin_headers)
    assert removed.status_code == 204, removed.json
    assert_problem(passkey_sign_in(client, device), 401, "passkey_refused")
    signed_in = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert signed_in.status_code == 200  # no factor left to ask for
    assert client.get(API, headers=bearer(signed_in.json["access_token"])).json == []


@pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL's row locks")
def test_concurrent_answers_pass_once(
    app: Flask, client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    """One ceremony answered twice at once, and two answers bearing one counter value at once:
    one sign-in each time, the other refused."""
    assert register_passkey(client, headers, device).status_code == 201
    for _ in range(10):
        started = client.post(f"{API}/authenticate/options", json={}).json
        body = {"ceremony": started["ceremony"], "credential": device.get(started["options"])}
        answers = race(app, *[lambda c, b=body: c.post(f"{API}/authenticate/verify", json=b)] * 2)
        assert sorted(a.status_code for a in answers) == [200, 400], [a.json for a in answers]

        # A copy of the passkey signing with the same counter as the original, at once.
        first = client.post(f"{API}/authenticate/options", json={}).json
        second = client.post(f"{API}/authenticate/options", json={}).json
        device.counts = False
        device.credentials[0].sign_count += 1
        bodies = [
            {"ceremony": started["ceremony"], "credential": device.get(started["options"])}
            for started in (first, second)
        ]
        device.counts = True
        answers = race(
            app, *[lambda c, b=b: c.post(f"{API}/authenticate/verify", json=b) for b in bodies]
        )
        codes = sorted((a.status_code, (a.json or {}).get("code", "")) for a in answers)
        assert codes == [(200, ""), (401, "passkey_clone_suspected")], codes


def test_the_relying_party_derives_from_the_frontend() -> None:
    settings = load_settings({"FRONTEND_URL": "https://app.example.com:8443/welcome"})
    assert settings.WEBAUTHN_RP_ID == "app.example.com"
    assert settings.WEBAUTHN_ORIGINS == ("https://app.example.com:8443",)
    assert load_settings({}).WEBAUTHN_RP_ID == "localhost"  # FRONTEND_URL's development default
    listed = load_settings(
        {
            "WEBAUTHN_RP_ID": "example.com",
            "WEBAUTHN_ORIGINS": "https://a.example.com,https://example.com",
        }
    )
    assert listed.WEBAUTHN_ORIGINS == ("https://a.example.com", "https://example.com")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": "https://evil.net"}, "not within"),
        (
            {"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": "https://badexample.com"},
            "not within",
        ),
        ({"WEBAUTHN_ORIGINS": "https://*.example.com"}, "exact origins"),
        ({"WEBAUTHN_CHALLENGE_TTL": "5"}, "between"),
    ],
)
def test_passkey_settings_are_checked(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    assert message in str(refused.value)


def test_a_deleted_account_takes_its_passkeys_along(
    client: FlaskClient, headers: dict[str, str], device: Authenticator
) -> None:
    assert register_passkey(client, headers, device).status_code == 201
    # Deleting the account lowers protection: the password-only session may not.
    refused = client.delete("/api/v1/users/me", headers=headers, json={"password": PASSWORD})
    assert_problem(refused, 403, "step_up_required")
    fresh = bearer(passkey_sign_in(client, device).json["access_token"])
    deleted = client.delete("/api/v1/users/me", headers=fresh, json={"password": PASSWORD})
    assert deleted.status_code == 204, deleted.json
    assert_problem(passkey_sign_in(client, device), 401, "passkey_refused")
