"""The caller's own account, and user management for admins."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, stream_with_context

from project.api.arguments import Blueprint
from project.api.auth import (
    admin_required,
    auth_required,
    authenticated_user,
    current_session_id,
    current_user,
)
from project.api.ratelimits import ends_sessions, password_limit
from project.models import User
from project.schemas.audit import (
    AccountExportSchema,
    EventPageSchema,
    EventQuerySchema,
    export_json,
)
from project.schemas.users import (
    AccountDeleteSchema,
    AdminUserUpdateSchema,
    PasswordChangeSchema,
    ProfileUpdateSchema,
    UserListQuerySchema,
    UserPageSchema,
    UserSchema,
)
from project.services import audit, totp, users
from project.services.audit import EventPage
from project.services.users import UserPage

blp = Blueprint("users", __name__, url_prefix="/users", description="Users and admin")


@blp.route("/me", methods=["GET"])
@auth_required
@blp.response(200, UserSchema)
def get_me() -> User:
    """Return the caller's profile.

    The authenticated user's own record.
    """
    return authenticated_user()


@blp.route("/me", methods=["PATCH"])
@password_limit
@auth_required
@blp.arguments(
    ProfileUpdateSchema,
    example={
        "full_name": "Ada King",
        "email": "ada.king@example.com",
        "current_password": "correct horse battery staple",
    },
)
@blp.response(200, UserSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(
    403, response="FORBIDDEN", description="`step_up_required`, `reauthentication_required`"
)
@blp.alt_response(409, response="CONFLICT", description="`email_taken`")
def update_me(changes: dict[str, Any]) -> User:
    """Update the caller's profile; a new email is mailed a confirmation link first.

    Changes `full_name`. Changing `email` needs `current_password` (and, with a second factor,
    a recent step-up); the new address takes effect once confirmed from a link mailed to it,
    and the old address is told. An account without a password (made by a provider) omits
    `current_password`: its session must have signed in within `STEP_UP_MAX_AGE` seconds,
    else 403 `reauthentication_required` (sign in again, retry).
    """
    return users.update_profile(
        user_id=current_user.id, changes=changes, session_id=current_session_id()
    )


@blp.route("/me", methods=["DELETE"])
@password_limit
@auth_required
@blp.arguments(AccountDeleteSchema, example={"password": "correct horse battery staple"})
@blp.response(204)
@blp.alt_response(409, response="CONFLICT", description="`last_admin`")
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(
    403, response="FORBIDDEN", description="`step_up_required`, `reauthentication_required`"
)
def delete_me(data: dict[str, Any]) -> None:
    """Delete the caller's account and every session; the password confirms it.

    Deletes the account and every session; the password confirms it, and with a second factor
    a recent step-up too. An account without a password omits `password`: its session must
    have signed in within `STEP_UP_MAX_AGE` seconds, else 403 `reauthentication_required`.
    The last active admin cannot delete itself (409 `last_admin`).
    """
    users.delete_account(
        user_id=current_user.id, password=data.get("password"), session_id=current_session_id()
    )


@blp.route("/me/password", methods=["POST"])
@password_limit
@auth_required
@blp.arguments(
    PasswordChangeSchema,
    example={
        "current_password": "correct horse battery staple",
        "new_password": "a new long passphrase",
    },
)
@blp.response(204)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(
    403, response="FORBIDDEN", description="`step_up_required`, `reauthentication_required`"
)
def change_password(data: dict[str, Any]) -> None:
    """Change the caller's password; other sessions end and access tokens must be refreshed.

    Other sessions end and every access token issued before is void; the caller keeps its
    session and refreshes to get a new access token. A notice is mailed. With a second
    factor the session needs a recent step-up. An account without a password sets its first
    one by omitting `current_password`, from a session that signed in within
    `STEP_UP_MAX_AGE` seconds (else 403 `reauthentication_required`).
    """
    users.change_password(
        user_id=current_user.id,
        current_password=data.get("current_password"),
        new_password=data["new_password"],
        session_id=current_session_id(),
    )


@blp.route("", methods=["GET"])
@admin_required
@blp.arguments(UserListQuerySchema, location="query")
@blp.response(200, UserPageSchema)
def list_users(query: dict[str, Any]) -> UserPage:
    """List users, filtered, one keyset page at a time.

    Admins only. Pass `next_cursor` back as `cursor`, with the same filters. Pages come in
    creation order; filtered by `email` (a case-insensitive prefix) they come in email order,
    so a page costs the same whatever the prefix matches. Other filters: role, is_active.
    """
    return users.list_users(
        limit=query["limit"],
        after=query.get("cursor"),
        role=query.get("role"),
        is_active=query.get("is_active"),
        email_prefix=query.get("email"),
    )


@blp.route("/<uuid:user_id>", methods=["GET"])
@admin_required
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def get_user(user_id: uuid.UUID) -> User:
    """Return one user.

    Admins only.
    """
    return users.get_user(user_id)


@blp.route("/<uuid:user_id>", methods=["PATCH"])
@admin_required
@blp.arguments(
    AdminUserUpdateSchema, example={"role": "admin", "is_active": True, "full_name": "Grace Hopper"}
)
@blp.response(200, UserSchema)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
@blp.alt_response(409, response="CONFLICT", description="`last_admin`")
def update_user(changes: dict[str, Any], user_id: uuid.UUID) -> User:
    """Change a user's name, role or active flag.

    Admins only. A role change or deactivation voids the user's access tokens at once;
    deactivation also ends every session. The last active admin cannot be demoted or
    deactivated.
    """
    return users.admin_update(user_id=user_id, changes=changes)


@blp.route("/<uuid:user_id>", methods=["DELETE"])
@admin_required
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
@blp.alt_response(409, response="CONFLICT", description="`last_admin`")
def delete_user(user_id: uuid.UUID) -> None:
    """Delete a user and their sessions.

    Admins only. The user's sessions end at once; the audit trail keeps its events.
    """
    users.admin_delete(user_id=user_id)


@blp.route("/<uuid:user_id>/factors", methods=["DELETE"])
@ends_sessions
@admin_required
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def remove_user_factors(user_id: uuid.UUID) -> None:
    """Remove every second factor of a user, e.g. after a lost phone.

    Admins only. Removes the user's authenticator apps, recovery codes and passkeys, ends the
    user's sessions, records the admin in the audit trail and mails the user.
    """
    totp.admin_remove_all(user_id=user_id)


@blp.route("/me/export", methods=["GET"])
@auth_required
@blp.response(200, AccountExportSchema)
def export_me() -> Response:
    """Download everything Warden holds about the caller: profile, sessions, events.

    The caller's profile, every session (ended ones included) and security events, as JSON,
    streamed as the events are read.
    """
    export = users.export_account(user_id=current_user.id)
    return Response(stream_with_context(export_json(export)), mimetype="application/json")


@blp.route("/me/events", methods=["GET"])
@auth_required
@blp.arguments(EventQuerySchema, location="query")
@blp.response(200, EventPageSchema)
def my_events(query: dict[str, Any]) -> EventPage:
    """The caller's own security activity, newest first.

    Logins, failures, password and email changes, revocations, newest first, in pages.
    """
    return audit.search(user_id=current_user.id, limit=query["limit"], before=query.get("cursor"))
