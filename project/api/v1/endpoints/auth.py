"""Registration, login, refresh and logout."""

from __future__ import annotations

from typing import Any

from project.api.arguments import Blueprint
from project.api.auth import (
    auth_required,
    client_info,
    current_session_id,
    current_token_id,
    refresh_token_required,
)
from project.core.tokens import TokenPair
from project.models import User
from project.schemas.auth import LoginSchema, RegisterSchema, TokenPairSchema
from project.schemas.users import UserSchema
from project.services import auth

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and tokens")


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, response="CONFLICT", description="`email_taken`")
def register(data: dict[str, Any]) -> User:
    """Create an account."""
    return auth.register(**data)


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(403, response="FORBIDDEN", description="`account_disabled`")
def login(data: dict[str, Any]) -> TokenPair:
    """Log in with email and password; returns an access and a refresh token."""
    return auth.login(email=data["email"], password=data["password"], client=client_info())


@blp.route("/refresh", methods=["POST"])
@blp.response(200, TokenPairSchema)
@refresh_token_required
def refresh() -> TokenPair:
    """Trade the refresh token (Bearer) for a new pair; the old one stops working."""
    return auth.refresh(
        session_id=current_session_id(), jti=current_token_id(), client=client_info()
    )


@blp.route("/logout", methods=["POST"])
@blp.response(204)
@auth_required
def logout() -> None:
    """End the current session."""
    auth.logout(session_id=current_session_id())
