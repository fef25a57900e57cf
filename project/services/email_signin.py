"""Passwordless sign-in by a mailed link or code (EMAIL_SIGNIN).

Asking is answered alike for every address, and the lookup and the mail happen off the
request path. The mail holds a single-use link and a short code for the same token; either
works once, within EMAIL_SIGNIN_TTL. Five wrong codes void it, so the code's small space
cannot be searched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from project.core import context, emails, errors
from project.core.settings import current_settings
from project.core.tasks import defer
from project.extensions import db
from project.models import AuditEventType, OneTimeToken, TokenPurpose, User
from project.models.types import utcnow
from project.repositories import UserRepository
from project.repositories.one_time_tokens import OneTimeTokenRepository
from project.services import audit, mail_budget, notifications, one_time_tokens

CODE_DIGITS = 8
MAX_CODE_FAILURES = 5
PURPOSE = TokenPurpose.EMAIL_SIGN_IN


def _code_digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def request(*, email: str) -> None:
    """Queue a sign-in mail; the caller learns nothing about the address."""
    defer(send, email, context.current()._asdict(), description="mail: email sign-in")


def send(email: str, request_context: dict[str, str | None]) -> None:
    """Job: mail a sign-in link and code if the address has an active account."""
    context.bind(**request_context)
    user = UserRepository().get_by_email(emails.key_of(email))
    if user is None or not user.is_active:
        return
    if not mail_budget.allows(address=user.email_normalized, purpose=PURPOSE, user_id=user.id):
        db.session.commit()
        return
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    salt = secrets.token_hex(16)
    token = one_time_tokens.issue(
        user.id,
        PURPOSE,
        ttl=current_settings().EMAIL_SIGNIN_TTL,
        data={"salt": salt, "code": _code_digest(salt, code), "failures": 0},
    )
    audit.record(AuditEventType.EMAIL_SIGNIN_SENT, user_id=user.id, actor_id=user.id)
    db.session.commit()
    notifications.email_sign_in(to=user.email, token=token, code=code)


def redeem_link(*, token: str) -> User:
    """Use up a mailed link's token; return its user (no commit)."""
    found = one_time_tokens.find(token, PURPOSE)
    return _use(found)


def redeem_code(*, email: str, code: str) -> User:
    """Use up the mailed code of ``email``'s newest live sign-in; return its user.

    A wrong code counts against every live sign-in of the address, and the last allowed
    failure voids them (no commit needed by the caller for that: it is committed here).
    """
    invalid = errors.InvalidOneTimeToken("This code is invalid or has expired.")
    user = UserRepository().get_by_email(emails.key_of(email))
    if user is None:
        raise invalid
    live = OneTimeTokenRepository().live_of_user(user.id, PURPOSE, now=utcnow())
    for token in live:
        expected = str(token.data.get("code", ""))
        if hmac.compare_digest(expected, _code_digest(str(token.data.get("salt")), code)):
            return _use(token)
    for token in live:
        failures = int(token.data.get("failures", 0)) + 1
        token.data = {**token.data, "failures": failures}
        if failures >= MAX_CODE_FAILURES:
            token.used_at = utcnow()
    db.session.commit()
    raise invalid


def _use(token: OneTimeToken) -> User:
    user = UserRepository().lock(token.user_id)
    if user is None or not user.is_active:
        raise errors.InvalidOneTimeToken("This link is invalid or has expired.")
    one_time_tokens.consume(token)
    # The link proves the mailbox, as a verification link does.
    user.email_verified = True
    return user
