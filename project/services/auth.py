"""Registration, login, token refresh and logout."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from project.core import errors, security
from project.core.emails import normalize_email
from project.core.tokens import TokenPair, issue_token_pair, new_token_id
from project.extensions import db
from project.models import Session, User
from project.models.types import utcnow
from project.repositories import SessionRepository, UserRepository
from project.services.client import ClientInfo


def _rounds() -> int:
    return int(current_app.config["BCRYPT_ROUNDS"])


def create_user(*, email: str, password: str, full_name: str | None, **fields: object) -> User:
    """Add a user to the session (no commit); raise EmailTaken when the email is in use."""
    users = UserRepository()
    normalized = normalize_email(email)
    if users.get_by_email(normalized) is not None:
        raise errors.EmailTaken("An account with this email already exists.")
    user = User(
        email=email.strip(),
        email_normalized=normalized,
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


def register(*, email: str, password: str, full_name: str | None = None) -> User:
    """Create an account with the role ``user``."""
    user = create_user(email=email, password=password, full_name=full_name)
    db.session.commit()
    return user


def login(*, email: str, password: str, client: ClientInfo) -> TokenPair:
    """Check credentials and open a session; return its first token pair."""
    users = UserRepository()
    user = users.get_by_email(normalize_email(email))
    if user is None:
        security.burn_verify(password, rounds=_rounds())
        raise errors.InvalidCredentials("The email or password is incorrect.")
    if not security.verify_password(password, user.password_hash):
        raise errors.InvalidCredentials("The email or password is incorrect.")
    if not user.is_active:
        raise errors.AccountDisabled("This account has been deactivated.")
    if security.needs_rehash(user.password_hash, rounds=_rounds()):
        user.password_hash = security.hash_password(password, rounds=_rounds())
    tokens = _open_session(user, client)
    db.session.commit()
    return tokens


def _open_session(user: User, client: ClientInfo) -> TokenPair:
    now = utcnow()
    refresh_ttl = int(current_app.config["REFRESH_TOKEN_TTL"])
    session = SessionRepository().add(
        Session(
            user_id=user.id,
            refresh_jti=new_token_id(),
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=refresh_ttl),
            ip=client.ip,
            user_agent=client.user_agent,
        )
    )
    return _issue(user.id, session.id, session.refresh_jti)


def _issue(user_id: uuid.UUID, session_id: uuid.UUID, refresh_jti: str) -> TokenPair:
    return issue_token_pair(
        user_id=user_id,
        session_id=session_id,
        refresh_jti=refresh_jti,
        access_ttl=int(current_app.config["ACCESS_TOKEN_TTL"]),
        refresh_ttl=int(current_app.config["REFRESH_TOKEN_TTL"]),
    )


def refresh(*, session_id: uuid.UUID, jti: str, client: ClientInfo) -> TokenPair:
    """Rotate a session's refresh token; a rotated token presented again ends the session."""
    sessions = SessionRepository()
    found = sessions.get_with_user(session_id)
    now = utcnow()
    if found is None:
        raise errors.TokenRevoked("This session has ended.")
    session, user = found
    if not session.is_active_at(now) or not user.is_active:
        raise errors.TokenRevoked("This session has ended.")
    new_jti = new_token_id()
    expires_at = now + timedelta(seconds=int(current_app.config["REFRESH_TOKEN_TTL"]))
    rotated = sessions.rotate(
        session_id=session_id,
        presented_jti=jti,
        new_jti=new_jti,
        now=now,
        expires_at=expires_at,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    if not rotated:
        # Only this server signs tokens for this session, so a valid signature with a stale
        # jti means an old token was replayed: assume theft and end the whole family.
        sessions.revoke(session_id, now=now)
        db.session.commit()
        raise errors.RefreshTokenReused("This refresh token was already used; session ended.")
    db.session.commit()
    return _issue(user.id, session_id, new_jti)


def logout(*, session_id: uuid.UUID) -> None:
    """End one session; its refresh and access tokens stop working."""
    SessionRepository().revoke(session_id, now=utcnow())
    db.session.commit()


def authenticate(*, user_id: uuid.UUID, session_id: uuid.UUID) -> User:
    """Return the active user behind an access token, or raise TokenRevoked."""
    found = SessionRepository().get_with_user(session_id)
    if found is None:
        raise errors.TokenRevoked("This session has ended.")
    session, user = found
    if user.id != user_id or not user.is_active or not session.is_active_at(utcnow()):
        raise errors.TokenRevoked("This session has ended.")
    return user
