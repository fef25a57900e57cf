"""Registration, login, refresh, logout and the caller's sessions."""

from __future__ import annotations

import uuid
from typing import Any

from flask_jwt_extended import current_user

from project.api.arguments import Blueprint
from project.api.auth import (
    auth_required,
    came_in_cookie,
    clear_cookies,
    client_info,
    current_session_id,
    current_token_id,
    deliver_tokens,
    refresh_token_required,
)
from project.api.ratelimits import login_limit, refresh_limit, register_limit
from project.core.tokens import TokenPair
from project.models import User
from project.schemas.auth import (
    LoginQuerySchema,
    LoginSchema,
    LogoutQuerySchema,
    RegisterSchema,
    SessionSchema,
    TokenDelivery,
    TokenPairSchema,
)
from project.schemas.users import UserSchema
from project.services import auth, sessions
from project.services.sessions import ActiveSession

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts, tokens, sessions")


@blp.route("/register", methods=["POST"])
@register_limit
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, response="CONFLICT", description="`email_taken`")
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`rate_limited`")
def register(data: dict[str, Any]) -> User:
    """Create an account."""
    return auth.register(**data)


@blp.route("/login", methods=["POST"])
@login_limit
@blp.arguments(LoginSchema)
@blp.arguments(LoginQuerySchema, location="query")
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(403, response="FORBIDDEN", description="`account_disabled`")
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`login_throttled`")
def login(data: dict[str, Any], query: dict[str, Any]) -> dict[str, Any] | TokenPair:
    """Log in with email and password; returns tokens, or sets cookies with ?mode=cookie."""
    pair = auth.login(email=data["email"], password=data["password"], client=client_info())
    return deliver_tokens(pair, cookie=query["mode"] is TokenDelivery.COOKIE)


@blp.route("/refresh", methods=["POST"])
@refresh_limit
@refresh_token_required
@blp.response(200, TokenPairSchema)
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`rate_limited`")
def refresh() -> dict[str, Any] | TokenPair:
    """Trade the refresh token (Bearer or cookie) for a new pair; the old one stops working."""
    pair = auth.refresh(
        session_id=current_session_id(), jti=current_token_id(), client=client_info()
    )
    return deliver_tokens(pair, cookie=came_in_cookie())


@blp.route("/logout", methods=["POST"])
@auth_required
@blp.arguments(LogoutQuerySchema, location="query")
@blp.response(204)
def logout(query: dict[str, Any]) -> None:
    """End this session (`local`), every other one (`others`) or all of them (`global`)."""
    sessions.logout(user_id=current_user.id, session_id=current_session_id(), scope=query["scope"])
    if came_in_cookie():
        clear_cookies()


@blp.route("/sessions", methods=["GET"])
@auth_required
@blp.response(200, SessionSchema(many=True))
def list_sessions() -> list[ActiveSession]:
    """List the caller's active sessions, newest first."""
    return sessions.list_sessions(user_id=current_user.id, current_session_id=current_session_id())


@blp.route("/sessions/<uuid:session_id>", methods=["DELETE"])
@auth_required
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def revoke_session(session_id: uuid.UUID) -> None:
    """End one of the caller's sessions."""
    sessions.revoke_session(user_id=current_user.id, session_id=session_id)
