"""Authentication: JWT callbacks in the problem shape, and route decorators."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from copy import deepcopy
from functools import wraps
from http import HTTPStatus
from typing import Any, TypeVar, cast

from flask import Response, g, request
from flask_jwt_extended import JWTManager, current_user, get_jwt, verify_jwt_in_request

from project.api.errors import problem_response
from project.core import errors
from project.models import User
from project.services import auth as auth_service
from project.services.client import ClientInfo

F = TypeVar("F", bound=Callable[..., Any])
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def register_jwt_callbacks(jwt: JWTManager) -> None:
    """Make flask-jwt-extended check sessions and answer in the problem shape."""

    @jwt.expired_token_loader
    def expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(errors.TokenExpired("The token has expired."))

    @jwt.invalid_token_loader
    def invalid(reason: str) -> Response:
        return problem_response(errors.InvalidToken(reason))

    @jwt.unauthorized_loader
    def missing(reason: str) -> Response:
        return problem_response(errors.AuthorizationRequired(reason))

    @jwt.revoked_token_loader
    @jwt.user_lookup_error_loader
    def revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(errors.TokenRevoked("This session has ended."))

    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        try:
            user = auth_service.authenticate(
                user_id=uuid.UUID(payload["sub"]), session_id=uuid.UUID(payload["sid"])
            )
        except (errors.TokenRevoked, KeyError, ValueError, TypeError):
            return True
        g.authenticated_user = user
        g.user_id = str(user.id)
        return False

    @jwt.user_lookup_loader
    def load_user(_header: dict[str, Any], _payload: dict[str, Any]) -> User | None:
        return cast(User | None, g.get("authenticated_user"))


def _document(view: Callable[..., Any], *statuses: int) -> None:
    """Add the Bearer security requirement and its error responses to the OpenAPI doc."""
    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    apidoc.setdefault("manual_doc", {})["security"] = BEARER
    responses = apidoc.setdefault("response", {}).setdefault("responses", {})
    for status in statuses:
        responses.setdefault(status, []).append(HTTPStatus(status).name)
    view._apidoc = apidoc  # type: ignore[attr-defined]


def auth_required(view: F) -> F:
    """Require a valid access token of an active session."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request()
        return view(*args, **kwargs)

    _document(wrapper, 401)
    return cast(F, wrapper)


def admin_required(view: F) -> F:
    """Require an access token of an active admin."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request()
        if not current_user.is_admin:
            raise errors.Forbidden("This operation needs the admin role.")
        return view(*args, **kwargs)

    _document(wrapper, 401, 403)
    return cast(F, wrapper)


def refresh_token_required(view: F) -> F:
    """Require a refresh token (an access token is refused)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request(refresh=True)
        return view(*args, **kwargs)

    _document(wrapper, 401)
    return cast(F, wrapper)


def current_session_id() -> uuid.UUID:
    """Return the session id carried by the verified token."""
    return uuid.UUID(get_jwt()["sid"])


def current_token_id() -> str:
    """Return the ``jti`` of the verified token."""
    return str(get_jwt()["jti"])


def client_info() -> ClientInfo:
    """Describe the calling client for the services."""
    agent = request.headers.get("User-Agent")
    return ClientInfo(ip=request.remote_addr, user_agent=agent[:512] if agent else None)
