"""The caller's own account, and user management for admins."""

from __future__ import annotations

import uuid
from typing import Any

from flask_jwt_extended import current_user

from project.api.arguments import Blueprint
from project.api.auth import admin_required, auth_required, current_session_id
from project.api.ratelimits import password_limit
from project.models import User
from project.repositories import UserFilters
from project.schemas.users import (
    AccountDeleteSchema,
    AdminUserUpdateSchema,
    PasswordChangeSchema,
    ProfileUpdateSchema,
    UserListQuerySchema,
    UserPageSchema,
    UserSchema,
)
from project.services import users
from project.services.users import UserPage

blp = Blueprint("users", __name__, url_prefix="/users", description="Users and admin")


@blp.route("/me", methods=["GET"])
@blp.response(200, UserSchema)
@auth_required
def get_me() -> User:
    """Return the caller's profile."""
    return current_user  # type: ignore[no-any-return]


@blp.route("/me", methods=["PATCH"])
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, UserSchema)
@auth_required
def update_me(changes: dict[str, Any]) -> User:
    """Update the caller's profile."""
    return users.update_profile(user=current_user, changes=changes)


@blp.route("/me", methods=["DELETE"])
@blp.arguments(AccountDeleteSchema)
@blp.response(204)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@auth_required
def delete_me(data: dict[str, Any]) -> None:
    """Delete the caller's account and every session; the password confirms it."""
    users.delete_account(user=current_user, password=data["password"])


@blp.route("/me/password", methods=["POST"])
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
@password_limit
@auth_required
def change_password(data: dict[str, Any]) -> None:
    """Change the caller's password; other sessions end and access tokens must be refreshed."""
    users.change_password(
        user=current_user,
        current_password=data["current_password"],
        new_password=data["new_password"],
        session_id=current_session_id(),
    )


@blp.route("", methods=["GET"])
@blp.arguments(UserListQuerySchema, location="query")
@blp.response(200, UserPageSchema)
@admin_required
def list_users(query: dict[str, Any]) -> UserPage:
    """List users in creation order, filtered, one keyset page at a time."""
    filters = UserFilters(
        role=query.get("role"),
        is_active=query.get("is_active"),
        email_prefix=query["email"].lower() if query.get("email") else None,
    )
    return users.list_users(filters=filters, limit=query["limit"], after=query.get("cursor"))


@blp.route("/<uuid:user_id>", methods=["GET"])
@blp.response(200, UserSchema)
@admin_required
def get_user(user_id: uuid.UUID) -> User:
    """Return one user."""
    return users.get_user(user_id)


@blp.route("/<uuid:user_id>", methods=["PATCH"])
@blp.arguments(AdminUserUpdateSchema)
@blp.response(200, UserSchema)
@blp.alt_response(409, response="CONFLICT", description="`last_admin`")
@admin_required
def update_user(changes: dict[str, Any], user_id: uuid.UUID) -> User:
    """Change a user's name, role or active flag."""
    return users.admin_update(user_id=user_id, changes=changes)


@blp.route("/<uuid:user_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(409, response="CONFLICT", description="`last_admin`")
@admin_required
def delete_user(user_id: uuid.UUID) -> None:
    """Delete a user and their sessions."""
    users.admin_delete(user_id=user_id)
