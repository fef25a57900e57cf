"""Email verification and email change confirmation."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from project.core import context, emails, errors
from project.core.settings import current_settings
from project.core.tasks import defer
from project.extensions import db
from project.models import AuditEventType, TokenPurpose, User
from project.repositories import UserRepository
from project.services import audit, mail_budget, notifications, one_time_tokens


def start_verification(user: User) -> str:
    """Issue a new account's verification token (no commit); return the raw token to mail.

    Its mail is sent whatever the budget, and counts against it: with LINKS_KEPT no
    smaller than the budget, no request within a window voids this link.
    """
    mail_budget.count(address=user.email_normalized, purpose=TokenPurpose.VERIFY_EMAIL)
    return _issue_verification(user)


def _issue_verification(user: User) -> str:
    token = one_time_tokens.issue(
        user.id, TokenPurpose.VERIFY_EMAIL, ttl=current_settings().VERIFY_TOKEN_TTL
    )
    audit.record(AuditEventType.EMAIL_VERIFICATION_SENT, user_id=user.id, actor_id=user.id)
    return token


def verify(*, token: str) -> None:
    """Redeem a verification or email-change token."""
    found = one_time_tokens.find(token, TokenPurpose.VERIFY_EMAIL, TokenPurpose.CHANGE_EMAIL)
    # The user's row before the token's, the order of every use case that changes a user.
    user = UserRepository().lock(found.user_id)
    if user is None or not user.is_active:
        raise errors.InvalidOneTimeToken("This link is invalid or has expired.")
    one_time_tokens.consume(found)
    if found.purpose is TokenPurpose.CHANGE_EMAIL:
        _apply_email_change(user, str(found.data["new_email"]))
    else:
        user.email_verified = True
        one_time_tokens.void_all(user.id, TokenPurpose.VERIFY_EMAIL)
        audit.record(AuditEventType.EMAIL_VERIFIED, user_id=user.id, actor_id=user.id)
    db.session.commit()


def _apply_email_change(user: User, new_email: str) -> None:
    users = UserRepository()
    try:
        address = emails.parse(new_email)
    except emails.InvalidEmailError:
        # Staged under rules that accepted more (a link mailed before migration 0005).
        raise errors.InvalidOneTimeToken("This link is invalid or has expired.") from None
    taken = errors.EmailTaken("Another account took this address meanwhile.")
    holder = users.get_by_email(address.key)
    if holder is not None and holder.id != user.id:
        raise taken
    old_email = user.email
    user.email, user.email_normalized, user.email_verified = address.email, address.key, True
    try:
        users.flush()
    except IntegrityError:
        # Taken after the lookup, by a concurrent confirmation: the unique index decided.
        # The rollback also un-consumes the link, so it can be used once the address frees.
        db.session.rollback()
        raise taken from None
    # Links mailed to the old address must not work any more.
    one_time_tokens.void_all(user.id)
    audit.record(
        AuditEventType.EMAIL_CHANGED,
        user_id=user.id,
        actor_id=user.id,
        details={"from": old_email, "to": new_email},
    )


@dataclass(frozen=True)
class StagedEmailChange:
    """An email change recorded in the open transaction; mail it after the commit."""

    old_email: str
    new_email: str
    token: str | None  # None past the new address's mail budget

    def notify(self) -> None:
        """Mail the confirmation link to the new address and a notice to the old one."""
        if self.token is not None:
            notifications.email_change_confirmation(to=self.new_email, token=self.token)
        notifications.email_change_notice(to=self.old_email, new_email=self.new_email)


def stage_email_change(*, user: User, new_email: str) -> StagedEmailChange | None:
    """Issue a confirmation token for a new address (no commit); None if it is unchanged."""
    address = emails.parse(new_email)
    new_email = address.email
    if address.key == user.email_normalized:
        return None
    holder = UserRepository().get_by_email(address.key)
    if holder is not None and holder.id != user.id:
        raise errors.EmailTaken("An account with this email already exists.")
    purpose = TokenPurpose.CHANGE_EMAIL
    token = None
    # Past the budget no link is issued either: it would void the newest one mailed.
    if mail_budget.allows(address=address.key, purpose=purpose, user_id=user.id):
        token = one_time_tokens.issue(
            user.id,
            purpose,
            ttl=current_settings().EMAIL_CHANGE_TOKEN_TTL,
            data={"new_email": new_email},
        )
    audit.record(AuditEventType.EMAIL_CHANGE_REQUESTED, user_id=user.id, details={"to": new_email})
    return StagedEmailChange(old_email=user.email, new_email=new_email, token=token)


def request_resend(*, email: str) -> None:
    """Queue a new verification mail; the caller learns nothing about the address."""
    defer(resend_verification, email, context.current()._asdict())


def resend_verification(email: str, request_context: dict[str, str | None]) -> None:
    """Job: mail a fresh verification link if the account exists and is unverified."""
    context.bind(**request_context)
    user = UserRepository().get_by_email(emails.key_of(email))
    if user is None or user.email_verified or not user.is_active:
        return
    purpose = TokenPurpose.VERIFY_EMAIL
    if not mail_budget.allows(address=user.email_normalized, purpose=purpose, user_id=user.id):
        db.session.commit()
        return
    token = _issue_verification(user)
    db.session.commit()
    notifications.verification(to=user.email, token=token)
