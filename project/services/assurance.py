"""Step-up: lowering an account's protection needs a session that recently proved a factor.

Changing the password or email, removing a factor and deleting the account call
``require_recent_factor`` first. For a user with a second factor, the session must have
passed one (its ``amr`` holds otp, recovery or webauthn) within STEP_UP_MAX_AGE seconds;
``step_up`` proves one again for a live session.

An account without a usable password (made by a provider) confirms those
changes with ``require_recent_sign_in`` instead of its password: the session must have
signed in within the same STEP_UP_MAX_AGE.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from project.core import errors, security
from project.core.settings import current_settings
from project.extensions import db
from project.models import AuditEventType, Session, User
from project.models.types import utcnow
from project.repositories import SessionRepository, UserRepository
from project.services import audit, factors

MISSING = "Missing data for required field."


def _authenticated_lately(session: Session) -> bool:
    """Whether the session signed in or proved a factor within STEP_UP_MAX_AGE seconds."""
    age = utcnow() - session.auth_time
    return age <= timedelta(seconds=current_settings().STEP_UP_MAX_AGE)


def is_recent(session: Session) -> bool:
    """Whether the session proved a second factor within STEP_UP_MAX_AGE seconds."""
    return factors.proves_second_factor(session.amr) and _authenticated_lately(session)


def require_recent_factor(user: User, *, session_id: uuid.UUID) -> None:
    """Raise StepUpRequired unless the user has no factor or the session is recent.

    Reads the session row, not the token's claims: a step-up counts at once.
    """
    if not factors.active_factors(user):
        return
    session = SessionRepository().get(session_id)
    if session is None or session.user_id != user.id or not is_recent(session):
        raise errors.StepUpRequired(
            "Prove your second factor again (POST /auth/step-up), then retry."
        )


def require_recent_sign_in(user: User, *, session_id: uuid.UUID | None) -> None:
    """Raise ReauthenticationRequired unless the session authenticated within STEP_UP_MAX_AGE.

    What stands in for the password of an account that has none; reads the session row.
    """
    session = None if session_id is None else SessionRepository().get(session_id)
    if session is None or session.user_id != user.id or not _authenticated_lately(session):
        raise errors.ReauthenticationRequired(
            "Sign in again (with your identity provider or an emailed link), then retry with"
            " the new session."
        )


def require_password_field(
    user: User, password: str | None, *, field: str, missing: str = MISSING
) -> None:
    """Refuse (422 on ``field``) a missing password when the account has one to send."""
    if password is None and security.has_usable_password(user.password_hash):
        raise errors.ValidationFailed(
            "The input is invalid; see errors.", errors={field: [missing]}
        )


def confirm_presence(
    user: User,
    password: str | None,
    *,
    session_id: uuid.UUID | None,
    wrong: str = "The password is incorrect.",
) -> None:
    """Check the owner is present: the password sent, or with none sent a recent sign-in.

    After ``require_password_field``, no password means an account without one (made by a
    provider). A password sent for such an account is refused as a wrong one: an unusable
    hash matches none.
    """
    if password is None:
        require_recent_sign_in(user, session_id=session_id)
    elif not security.verify_password(password, user.password_hash):
        raise errors.InvalidCredentials(wrong)


def step_up(*, user_id: uuid.UUID, session_id: uuid.UUID, code: str) -> None:
    """Prove a second factor for the caller's session: its amr gains it, auth_time is now.

    Access tokens issued from then on (refresh) carry the new amr and auth_time.
    """
    user = UserRepository().get(user_id)
    if user is None:
        raise errors.TokenRevoked("This session has ended.")
    method = factors.check_code(user, code)
    if method is None:
        audit.record_now(
            AuditEventType.SECOND_FACTOR_FAILED, user_id=user.id, details={"step_up": True}
        )
        raise errors.InvalidCode("The code is wrong or was used already.")
    mark_proved(user, session_id=session_id, method=method)
    db.session.commit()


def mark_proved(user: User, *, session_id: uuid.UUID, method: str) -> None:
    """Record on the session (no commit) that it just proved ``method``."""
    repository = SessionRepository()
    session = repository.get(session_id)
    if session is None or session.user_id != user.id:
        raise errors.TokenRevoked("This session has ended.")
    amr = session.amr if method in session.amr else [*session.amr, method]
    repository.set_authentication(session_id, amr=amr, auth_time=utcnow())
    audit.record(AuditEventType.STEP_UP, user_id=user.id, details={"method": method, "amr": amr})
