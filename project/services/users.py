"""Profile, password and account management, for users and for admins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from project.core import emails, errors, security
from project.core.settings import current_settings
from project.extensions import db
from project.models import AuditEventType, Role, User
from project.repositories import SessionRepository, UserFilters, UserRepository
from project.repositories.passkeys import PasskeyRepository
from project.services import (
    assurance,
    audit,
    factors,
    notifications,
    one_time_tokens,
    transactions,
    verification,
)
from project.services.auth import check_password_policy, create_user
from project.services.sessions import end_sessions, publish_revocations

# Where a page of the admin list ends: (created_at, id), or the email in email order.
PageKey = tuple[datetime, uuid.UUID] | str
ADMIN_FIELDS = ("full_name", "role", "is_active")
# What a request missing the password that confirms it is told (as marshmallow words it).


@dataclass(frozen=True)
class UserPage:
    """One page of users and the key to continue after it (None at the end)."""

    items: list[User]
    next_key: PageKey | None


def update_profile(
    *, user_id: uuid.UUID, changes: dict[str, Any], session_id: uuid.UUID | None = None
) -> User:
    """Change the caller's profile; a new email needs confirming and a mailed confirmation.

    The password confirms a new email, or for an account without one a recent sign-in
    (see ``_confirm``); with a second factor, also a recent one on ``session_id`` (step-up).
    """
    email_change = None
    if "email" in changes:
        checked_hash = _confirm(
            user_id,
            changes.get("current_password"),
            session_id=session_id,
            field="current_password",
            missing="Required to change the email.",
        )
        user = _lock_unchanged(user_id, checked_hash)
        # Checked and staged before anything else, so a taken address changes nothing.
        email_change = verification.stage_email_change(user=user, new_email=changes["email"])
    else:
        user = lock_user(user_id)
    if "full_name" in changes and changes["full_name"] != user.full_name:
        user.full_name = changes["full_name"]
        audit.record(
            AuditEventType.USER_UPDATED, user_id=user.id, details={"fields": ["full_name"]}
        )
    db.session.commit()
    if email_change is not None:
        email_change.notify()
    return user


def _require_step_up(user: User, session_id: uuid.UUID | None) -> None:
    """Refuse a change that lowers protection from a session without a recent factor."""
    if session_id is None:
        if factors.active_factors(user):
            raise errors.StepUpRequired("Prove your second factor again, then retry.")
        return
    assurance.require_recent_factor(user, session_id=session_id)


def _confirm(
    user_id: uuid.UUID,
    password: str | None,
    *,
    session_id: uuid.UUID | None,
    field: str,
    missing: str = assurance.MISSING,
) -> str:
    """Check what confirms a change that lowers protection; return the hash checked against.

    An account with a usable password confirms with it (a 422 on ``field`` without it). One
    without (made by a provider) has nothing to type: a sign-in on
    ``session_id`` within STEP_UP_MAX_AGE stands in for it (re-authentication), and a
    password sent for it is refused as a wrong one. The step-up rule applies on top. Checked
    without holding a lock (bcrypt takes a third of a second).
    """
    user = get_user(user_id)
    assurance.require_password_field(user, password, field=field, missing=missing)
    _require_step_up(user, session_id)
    assurance.confirm_presence(
        user, password, session_id=session_id, wrong="The current password is incorrect."
    )
    return user.password_hash


def _lock_unchanged(user_id: uuid.UUID, checked_hash: str) -> User:
    """Lock the row; a password set since the check (a reset) makes it stale, as if wrong."""
    user = lock_user(user_id)
    if user.password_hash != checked_hash:
        raise errors.InvalidCredentials("The current password is incorrect.")
    return user


def change_password(
    *,
    user_id: uuid.UUID,
    current_password: str | None,
    new_password: str,
    session_id: uuid.UUID,
) -> None:
    """Set a new password, end every other session, and void every access token issued.

    The caller's own session survives: its refresh token still works. The current password
    confirms it; an account without one sets its first password after a recent sign-in
    (``_confirm``). With a second factor the session must have proved it recently (step-up).
    """
    checked_hash = _confirm(
        user_id, current_password, session_id=session_id, field="current_password"
    )
    user = _lock_unchanged(user_id, checked_hash)
    check_password_policy(new_password, email=user.email_normalized, field="new_password")
    rounds = current_settings().BCRYPT_ROUNDS
    user.password_hash = security.hash_password(new_password, rounds=rounds)
    user.token_version += 1
    revoked = end_sessions(user.id, keep=session_id)
    one_time_tokens.void_all(user.id)
    audit.record(
        AuditEventType.PASSWORD_CHANGED, user_id=user.id, details={"sessions_ended": len(revoked)}
    )
    db.session.commit()
    publish_revocations(revoked, cause="password_change")
    notifications.password_changed(to=user.email)


def _delete(user: User) -> None:
    session_ids = SessionRepository().ids_for_user(user.id)
    audit.record(AuditEventType.USER_DELETED, user_id=user.id, details={"email": user.email})
    UserRepository().delete(user)
    db.session.commit()
    publish_revocations(session_ids, cause="deletion")


def delete_account(
    *, user_id: uuid.UUID, password: str | None, session_id: uuid.UUID | None = None
) -> None:
    """Delete the caller's account and its sessions, once confirmed.

    The password confirms it, or for an account without one a recent sign-in (``_confirm``);
    with a second factor the session must have proved it recently (step-up).
    """
    checked_hash = _confirm(user_id, password, session_id=session_id, field="password")
    # The admin lock first, then the row: the order every use case takes them in.
    admins = UserRepository().lock_admin_changes()
    user = _lock_unchanged(user_id, checked_hash)
    _ensure_not_last_admin(user, admins=admins)
    _delete(user)


def list_users(
    *,
    limit: int,
    after: PageKey | None = None,
    role: Role | None = None,
    is_active: bool | None = None,
    email_prefix: str | None = None,
) -> UserPage:
    """Return one keyset page of users: in email order when filtered by email, else by age."""
    filters = UserFilters(
        role=role,
        is_active=is_active,
        email_prefix=emails.key_prefix(email_prefix) if email_prefix else None,
    )
    transactions.single_statement()
    rows = UserRepository().page(filters=filters, limit=limit + 1, after=after)
    items = rows[:limit]
    next_key: PageKey | None = None
    if len(rows) > limit:
        last = items[-1]
        next_key = last.email_normalized if filters.email_prefix else (last.created_at, last.id)
    return UserPage(items=items, next_key=next_key)


def get_user(user_id: uuid.UUID) -> User:
    """Return a user by id or raise NotFound."""
    user = UserRepository().get(user_id)
    if user is None:
        raise errors.NotFound("No user with this id.")
    return user


def lock_user(user_id: uuid.UUID) -> User:
    """Return a user read afresh and locked until commit, or raise NotFound."""
    user = UserRepository().lock(user_id)
    if user is None:
        raise errors.NotFound("No user with this id.")
    return user


def create_admin(*, email: str, password: str) -> User:
    """Create an active admin account (for the command line)."""
    user = create_user(
        email=email, password=password, full_name=None, role=Role.ADMIN, email_verified=True
    )
    audit.record(
        AuditEventType.USER_REGISTERED, user_id=user.id, details={"role": "admin", "via": "cli"}
    )
    db.session.commit()
    return user


def _ensure_not_last_admin(user: User, *, admins: int) -> None:
    """Refuse to take ``user`` out of the ``admins`` active admins if it is the last one."""
    if user.is_admin and user.is_active and admins <= 1:
        raise errors.LastAdmin("At least one active admin must remain.")


def admin_update(*, user_id: uuid.UUID, changes: dict[str, Any]) -> User:
    """Change another user's name, role or active flag."""
    may_remove_admin = (
        changes.get("is_active") is False or changes.get("role", Role.ADMIN) is not Role.ADMIN
    )
    # The admin lock first, then the row: the order every use case takes them in.
    admins = UserRepository().lock_admin_changes() if may_remove_admin else None
    user = lock_user(user_id)
    if admins is not None:
        _ensure_not_last_admin(user, admins=admins)
    role_changed = "role" in changes and changes["role"] is not user.role
    deactivated = changes.get("is_active") is False and user.is_active
    changed = [
        field
        for field in ADMIN_FIELDS
        if field in changes and changes[field] != getattr(user, field)
    ]
    if changed:
        audit.record(AuditEventType.USER_UPDATED, user_id=user.id, details={"fields": changed})
    if role_changed:
        audit.record(
            AuditEventType.ROLE_CHANGED,
            user_id=user.id,
            details={"from": user.role.value, "to": changes["role"].value},
        )
    if deactivated:
        audit.record(AuditEventType.USER_DEACTIVATED, user_id=user.id)
    for field in changed:
        setattr(user, field, changes[field])
    revoked: list[uuid.UUID] = []
    if role_changed or deactivated:
        # Access tokens issued under the old role or while active must stop working now.
        user.token_version += 1
    if deactivated:
        revoked = end_sessions(user.id)
        # Mailed links too: a compromised account's pending email change must not land.
        one_time_tokens.void_all(user.id)
    db.session.commit()
    publish_revocations(revoked, cause="deactivation")
    return user


def admin_delete(*, user_id: uuid.UUID) -> None:
    """Delete a user and its sessions."""
    admins = UserRepository().lock_admin_changes()
    user = lock_user(user_id)
    _ensure_not_last_admin(user, admins=admins)
    _delete(user)


@dataclass(frozen=True)
class AccountExport:
    """Everything Warden holds about one user."""

    profile: User
    sessions: list[Any]
    passkeys: list[Any]
    security_events: Iterator[Sequence[Sequence[Any]]]  # read as it is sent, in batches


def export_account(*, user_id: uuid.UUID) -> AccountExport:
    """Gather the caller's data for download; the events are read while being sent."""
    user = get_user(user_id)
    return AccountExport(
        profile=user,
        sessions=SessionRepository().all_for_user(user.id),
        passkeys=PasskeyRepository().for_user(user.id),
        security_events=audit.stream_events_for(user.id),
    )
