"""Registration, login and token refresh."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import NoReturn

from sqlalchemy.exc import IntegrityError

from project.core import emails, errors, metrics, security
from project.core.passwords import password_problems
from project.core.settings import current_settings
from project.core.tokens import TokenPair, new_token_id
from project.extensions import db
from project.models import AuditEventType, Session, User
from project.models.types import utcnow
from project.repositories import SessionRepository, UserRepository, local_state
from project.services import audit, notifications, signin, transactions, verification
from project.services.client import ClientInfo
from project.services.sessions import publish_revocations
from project.services.signin import Challenge, SignIn
from project.services.throttle import LoginGuard


def _rounds() -> int:
    return current_settings().BCRYPT_ROUNDS


def check_password_policy(password: str, *, email: str, field: str = "password") -> None:
    """Raise WeakPassword (naming ``field``) unless the password meets the policy."""
    problems = password_problems(
        password, email=email, check_breached=current_settings().PASSWORD_CHECK_BREACHED
    )
    if problems:
        raise errors.WeakPassword("The password is too weak.", errors={field: problems})


def create_user(*, email: str, password: str, full_name: str | None, **fields: object) -> User:
    """Add a user to the session (no commit); raise EmailTaken when the email is in use."""
    users = UserRepository()
    address = emails.parse(email)
    # Policy first: a weak password is refused alike for new and taken addresses.
    check_password_policy(password, email=address.key)
    if users.get_by_email(address.key) is not None:
        raise errors.EmailTaken("An account with this email already exists.")
    user = User(
        email=address.email,
        email_normalized=address.key,
        password_hash=security.hash_password(password, rounds=_rounds()),
        full_name=full_name,
        **fields,
    )
    try:
        return users.add(user)
    except IntegrityError:
        # Two registrations raced past the lookup; the unique index decided.
        db.session.rollback()
        raise errors.EmailTaken("An account with this email already exists.") from None


def register(*, email: str, password: str, full_name: str | None = None) -> User | None:
    """Create an account with the role ``user`` and mail a verification link.

    With REGISTRATION_ENUMERATION_SAFE a taken address is not an error: its owner gets a
    mail instead, the same bcrypt work is spent, and None is returned.
    """
    try:
        user = create_user(email=email, password=password, full_name=full_name)
    except errors.EmailTaken:
        if not current_settings().REGISTRATION_ENUMERATION_SAFE:
            raise
        security.burn_verify(password, rounds=_rounds())
        owner = UserRepository().get_by_email(emails.parse(email).key)
        if owner is not None:
            notifications.account_exists(to=owner.email)
        return None
    audit.record(AuditEventType.USER_REGISTERED, user_id=user.id, actor_id=user.id)
    token = verification.start_verification(user)
    db.session.commit()
    notifications.verification(to=user.email, token=token)
    return user


def login(
    *,
    email: str,
    password: str,
    client: ClientInfo,
    device_token: str | None = None,
    unlock_token: str | None = None,
) -> SignIn | Challenge:
    """Check credentials; open a session (tokens and a device token) or challenge for a factor.

    A user with a second factor gets a Challenge (project.services.signin) instead of tokens.
    """
    normalized = emails.key_of(email)
    guard = LoginGuard.for_attempt(
        email_normalized=normalized,
        ip=client.ip,
        device_token=device_token,
        unlock_token=unlock_token,
    )
    # Checked and counted in one atomic step before any hashing: one guess per lock window.
    retry_after = guard.reserve()
    if retry_after:
        _refuse_throttled(guard, normalized, retry_after)
    users = UserRepository()
    found = users.credentials(normalized)
    user = None
    if found is None:
        security.burn_verify(password, rounds=_rounds())
    elif security.verify_password(password, found.password_hash):
        # Checked without a lock (bcrypt is slow); now lock the row and read it afresh, so
        # this session is opened before or after a concurrent reset's revoke-all, never
        # during it. A password set since the check makes the check stale.
        user = users.lock(found.user_id)
        if user is None:
            found = None  # deleted meanwhile: as if unknown
        elif user.password_hash != found.password_hash:
            user = None
    if user is None:
        metrics.LOGINS.labels("failed").inc()
        audit.record_now(
            AuditEventType.LOGIN_FAILED,
            user_id=found.user_id if found else None,
            details={"reason": "unknown_email" if found is None else "wrong_password"},
        )
        raise errors.InvalidCredentials("The email or password is incorrect.")
    device = guard.record_success()
    if not user.is_active:
        audit.record_now(
            AuditEventType.LOGIN_FAILED, user_id=user.id, details={"reason": "deactivated"}
        )
        raise errors.AccountDisabled("This account has been deactivated.")
    if current_settings().REQUIRE_VERIFIED_EMAIL and not user.email_verified:
        audit.record_now(
            AuditEventType.LOGIN_FAILED, user_id=user.id, details={"reason": "email_not_verified"}
        )
        raise errors.EmailNotVerified("Confirm your email address before logging in.")
    if security.needs_rehash(user.password_hash, rounds=_rounds()):
        user.password_hash = security.hash_password(password, rounds=_rounds())
    return signin.finish(user, client, methods=["pwd"], device_token=device)


def _refuse_throttled(guard: LoginGuard, email_normalized: str, retry_after: int) -> NoReturn:
    """Answer 429; an unknown device's refusal mails the owner a way in that needs the mailbox.

    The password is not checked while locked, so the answer and the mail are the same for a
    right and a wrong one, and a lock costs no hashing.
    """
    user = UserRepository().get_by_email(email_normalized)
    audit.record_now(AuditEventType.LOGIN_THROTTLED, user_id=user.id if user else None)
    metrics.LOGIN_THROTTLED.inc()
    if user is not None and user.is_active and guard.should_mail_unlock():
        notifications.login_unlock(to=user.email, token=guard.unlock_token())
    raise errors.LoginThrottled(
        "Too many failed logins; try again later.",
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


def refresh(
    *, user_id: uuid.UUID, session_id: uuid.UUID, jti: str, client: ClientInfo
) -> TokenPair:
    """Rotate a session's refresh token; a rotated token presented again ends the session.

    The conditional UPDATE alone checks the token (a live session whose current token it
    is, an active user) and rotates it, in one statement and without a transaction around
    it: the usual refresh is one round trip to the database. Only a refused rotation
    loads the session, in a transaction, to tell a concurrent retry from a replay.
    """
    sessions = SessionRepository()
    now = utcnow()
    new_jti = new_token_id()
    memory = local_state.current()
    mark = memory.mark()
    transactions.single_statement()
    rotation = sessions.rotate(
        session_id=session_id,
        user_id=user_id,
        presented_jti=jti,
        new_jti=new_jti,
        now=now,
        expires_at=now + timedelta(seconds=current_settings().REFRESH_TOKEN_TTL),
        ip=client.ip,
        user_agent=client.user_agent,
    )
    if rotation is not None:
        db.session.commit()
        # The access token about to be used names a session just seen live: this worker
        # vouches for it from memory (no round trip) unless a change is heard meanwhile.
        memory.remember(session_id, rotation.user, mark)
        metrics.TOKENS_ISSUED.labels("refresh").inc()
        return signin.issue(
            rotation.user,
            session_id,
            new_jti,
            amr=rotation.amr,
            auth_time=rotation.auth_time,
        )
    transactions.begin_transaction()
    found = sessions.get_with_user(session_id)
    if found is None or found[1].id != user_id or not found[1].is_active:
        raise errors.TokenRevoked("This session has ended.")
    session, user = found
    if not session.is_active_at(now):
        raise errors.TokenRevoked("This session has ended.")
    if _within_reuse_interval(session, jti):
        # A client refreshing twice at once: hand out the current generation again.
        return signin.issue(
            user, session_id, session.refresh_jti, amr=session.amr, auth_time=session.auth_time
        )
    # Only this server signs tokens for this session, so a valid signature with a stale jti
    # means an old token was replayed: assume theft and end the whole family.
    revoked = sessions.revoke([session_id], now=now)
    audit.record(
        AuditEventType.TOKEN_REUSE_DETECTED,
        user_id=user.id,
        actor_id=user.id,
        details={"session_id": str(session_id)},
    )
    db.session.commit()
    publish_revocations(revoked, cause="reuse_detected")
    metrics.REFRESH_REUSE.inc()
    raise errors.RefreshTokenReused("This refresh token was already used; the session ended.")


def _within_reuse_interval(session: Session, jti: str) -> bool:
    interval = current_settings().REFRESH_REUSE_INTERVAL
    if interval <= 0 or session.previous_jti != jti or session.rotated_at is None:
        return False
    return utcnow() - session.rotated_at <= timedelta(seconds=interval)
