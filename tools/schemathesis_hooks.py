"""schemathesis hooks: fresh Bearer tokens for user operations, an admin's for admin ones.

Loaded by tools/fuzz.py through SCHEMATHESIS_HOOKS; WARDEN_URL, WARDEN_ADMIN_EMAIL and
WARDEN_ADMIN_PASSWORD say where and as whom.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.request
import uuid
from typing import Any

import schemathesis

ADMIN_PATHS = r"^/api/v1/(users$|users/\{user_id\}(/factors)?$|admin/)"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PASSWORD = "tangerine-oboe-42 winter"
_users = itertools.count()
_admin_ids: list[str] = []


def _post(path: str, body: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(
        os.environ["WARDEN_URL"] + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else {}


def _get(path: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        os.environ["WARDEN_URL"] + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def _login(email: str, password: str, kind: str = "access_token") -> str:
    return str(_post("/api/v1/auth/login", {"email": email, "password": password})[kind])


def _new_user() -> str:
    email = f"fuzz{os.getpid()}-{next(_users)}@example.com"
    _post("/api/v1/auth/register", {"email": email, "password": PASSWORD})
    return email


@schemathesis.auth(refresh_interval=5).apply_to(path_regex=r"^/api/v1/(auth/(?!refresh)|users/me)")
class FreshUser:
    """A new user every few cases: fuzzed logouts, password changes and deletions cannot
    leave later cases without a working token."""

    def get(self, case: Any, ctx: Any) -> str:
        return _login(_new_user(), PASSWORD)

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth(refresh_interval=60).apply_to(path_regex=ADMIN_PATHS)
class Admin:
    """The admin created by tools/fuzz.py."""

    def get(self, case: Any, ctx: Any) -> str:
        return _login(os.environ["WARDEN_ADMIN_EMAIL"], os.environ["WARDEN_ADMIN_PASSWORD"])

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth(refresh_interval=1).apply_to(path="/api/v1/auth/refresh")
class RefreshToken:
    """A refresh token for the refresh operation (each is good for one rotation)."""

    def get(self, case: Any, ctx: Any) -> str:
        return _login(_new_user(), PASSWORD, kind="refresh_token")

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Use the real password where one is checked, so the success paths are reached too."""
    operation = ctx.operation
    if isinstance(body, dict) and operation is not None:
        if operation.path == "/api/v1/users/me" and operation.method.upper() == "DELETE":
            body = {**body, "password": PASSWORD}
        elif operation.path == "/api/v1/users/me/password" and "current_password" in body:
            body = {**body, "current_password": PASSWORD}
        elif operation.path == "/api/v1/auth/factors/totp" and "password" in body:
            body = {**body, "password": PASSWORD}
    return body


def _admin_id() -> str:
    if not _admin_ids:
        token = _login(os.environ["WARDEN_ADMIN_EMAIL"], os.environ["WARDEN_ADMIN_PASSWORD"])
        _admin_ids.append(str(_get("/api/v1/users/me", token)["id"]))
    return _admin_ids[0]


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Never aim a changing request at the fuzz admin itself.

    Schemathesis reuses ids it saw in responses (GET /users lists the admin). Demoting,
    deactivating or deleting the admin whose token the admin operations use would leave
    every later admin case answering 403, which tests nothing.
    """
    parameters = case.path_parameters or {}
    if case.method.upper() not in SAFE_METHODS and parameters.get("user_id") == _admin_id():
        case.path_parameters = {**parameters, "user_id": str(uuid.uuid4())}
