"""Forgotten passwords: request a reset link, then set a new password with it."""

from __future__ import annotations

from project.core import context, emails, errors, security
from project.core.settings import current_settings
from project.core.tasks import defer
from project.extensions import db
from project.models import AuditEventType, TokenPurpose
from project.repositories import UserRepository
from project.services import audit, mail_budget, notifications, one_time_tokens
from project.services.auth import check_password_policy
from project.services.sessions import end_sessions, publish_revocations
from project.services.throttle import forget_failures


def request_reset(*, email: str) -> None:
    """Accept a reset request without revealing whether the account exists.

    All the work, lookup included, happens in a job: the request costs the same for a
    known and an unknown address, so its timing tells nothing.
    """
    defer(send_reset_link, email, context.current()._asdict())


def send_reset_link(email: str, request_context: dict[str, str | None]) -> None:
    """Job: mail a reset link if an active account has this address."""
    context.bind(**request_context)
    user = UserRepository().get_by_email(emails.key_of(email))
    if user is None or not user.is_active:
        return
    purpose = TokenPurpose.RESET_PASSWORD
    if not mail_budget.allows(address=user.email_normalized, purpose=purpose, user_id=user.id):
        db.session.commit()
        return
    token = one_time_tokens.issue(user.id, purpose, ttl=current_settings().RESET_TOKEN_TTL)
    audit.record(AuditEventType.PASSWORD_RESET_REQUESTED, user_id=user.id, actor_id=user.id)
    db.session.commit()
    notifications.password_reset(to=user.email, token=token)


def reset_password(*, token: str, new_password: str) -> None:
    """Set a new password with a reset token; every session of the user ends."""
    found = one_time_tokens.find(token, TokenPurpose.RESET_PASSWORD)
    # The user's row before the token's, the order of every use case that changes a user.
    user = UserRepository().lock(found.user_id)
    if user is None or not user.is_active:
        raise errors.InvalidOneTimeToken("This link is invalid or has expired.")
    # Check the policy before using the token up, so a weak choice can be corrected.
    check_password_policy(new_password, email=user.email_normalized, field="new_password")
    one_time_tokens.consume(found)
    user.password_hash = security.hash_password(
        new_password, rounds=current_settings().BCRYPT_ROUNDS
    )
    user.token_version += 1
    one_time_tokens.void_all(user.id)
    revoked = end_sessions(user.id)
    audit.record(AuditEventType.PASSWORD_RESET, user_id=user.id, actor_id=user.id)
    db.session.commit()
    publish_revocations(revoked, cause="password_reset")
    # Guesses at the old password no longer matter, and the owner proved the mailbox.
    forget_failures(user.email_normalized)
    notifications.password_changed(to=user.email)
