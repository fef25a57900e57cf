"""The end of every sign-in: open a session, or ask for a second factor first.

Every way of proving who someone is (password, passkey, identity provider, emailed link)
ends in ``finish``. A user with an active second factor whose sign-in has not proved one
gets a ``Challenge`` instead of tokens: a short-lived, single-purpose secret, stored
server-side (hashed) with the user and the methods so far, that ``answer`` trades for the
session once a code proves the factor. MAX_ATTEMPTS codes, right or wrong, end it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from project.core import errors, metrics
from project.core.settings import current_settings
from project.core.tokens import TokenPair, issue_token_pair, new_token_id
from project.extensions import db
from project.models import AuditEventType, Session, SignInChallenge, User
from project.models.types import utcnow
from project.repositories import SessionRepository, UserRepository
from project.repositories.sign_in_challenges import SignInChallengeRepository
from project.services import audit, factors, throttle
from project.services.client import ClientInfo

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class SignIn:
    """A sign-in's token pair, and for a password sign-in a device token for the account."""

    tokens: TokenPair
    device_token: str | None = None


@dataclass(frozen=True)
class Challenge:
    """A sign-in waiting for a second factor: what the client answers, for how long, how."""

    challenge: str
    expires_in: int
    factors: list[str]


def _digest(challenge: str) -> str:
    return hashlib.sha256(challenge.encode()).hexdigest()


def finish(
    user: User,
    client: ClientInfo,
    *,
    methods: Sequence[str],
    device_token: str | None = None,
) -> SignIn | Challenge:
    """Open a session for ``user`` authenticated by ``methods``, or challenge for a factor.

    Call it last in a sign-in use case, with the user's row locked or freshly checked: it
    records the audit event and commits (the caller's staged changes with it).
    """
    held = factors.active_factors(user)
    if held and not factors.proves_second_factor(list(methods)):
        return _challenge(user, methods, held)
    tokens = open_session(user, client, amr=list(methods))
    audit.record(
        AuditEventType.LOGIN_SUCCEEDED,
        user_id=user.id,
        actor_id=user.id,
        details={"amr": list(methods)},
    )
    db.session.commit()
    metrics.LOGINS.labels("succeeded").inc()
    metrics.TOKENS_ISSUED.labels("login").inc()
    return SignIn(tokens, device_token)


def _challenge(user: User, methods: Sequence[str], held: list[str]) -> Challenge:
    ttl = current_settings().SIGN_IN_CHALLENGE_TTL
    token = secrets.token_urlsafe(32)
    now = utcnow()
    repository = SignInChallengeRepository()
    # The user's abandoned challenges go as a new one comes: the table stays small.
    repository.delete_expired(now=now, user_id=user.id)
    repository.add(
        SignInChallenge(
            token_hash=_digest(token),
            user_id=user.id,
            methods=list(methods),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    audit.record(
        AuditEventType.SECOND_FACTOR_REQUIRED,
        user_id=user.id,
        actor_id=user.id,
        details={"amr": list(methods)},
    )
    db.session.commit()
    return Challenge(challenge=token, expires_in=ttl, factors=held)


def pending_user(challenge: str) -> User:
    """The user a live challenge belongs to, without spending an attempt (e.g. to list the
    passkeys it may be answered with); raise InvalidChallenge otherwise."""
    found = SignInChallengeRepository().find_live(
        _digest(challenge), now=utcnow(), max_attempts=MAX_ATTEMPTS
    )
    user = None if found is None else UserRepository().get(found.user_id)
    if user is None or not user.is_active:
        raise errors.InvalidChallenge("This sign-in challenge cannot be used; sign in again.")
    return user


def complete(challenge: str, client: ClientInfo, *, method: str) -> SignIn:
    """Spend a challenge on a second factor the caller has just proved (a passkey).

    The caller has checked the factor belongs to ``pending_user(challenge)``.
    """
    repository = SignInChallengeRepository()
    digest = _digest(challenge)
    found = repository.count_attempt(digest, now=utcnow(), max_attempts=MAX_ATTEMPTS)
    if found is None or not repository.take(digest):
        raise errors.InvalidChallenge("This sign-in challenge cannot be used; sign in again.")
    user = UserRepository().lock(found.user_id)
    if user is None or not user.is_active:
        raise errors.InvalidChallenge("This sign-in challenge cannot be used; sign in again.")
    return _finish_challenge(user, client, methods=[*found.methods, method])


def answer(*, challenge: str, code: str, client: ClientInfo) -> SignIn:
    """Trade a challenge and a TOTP or recovery code for the session's token pair."""
    repository = SignInChallengeRepository()
    digest = _digest(challenge)
    # Counted and committed before the code is checked: a wrong code spends an attempt
    # even if this request dies mid-way.
    found = repository.count_attempt(digest, now=utcnow(), max_attempts=MAX_ATTEMPTS)
    db.session.commit()
    user = None if found is None else UserRepository().get(found.user_id)
    if found is None or user is None or not user.is_active:
        raise errors.InvalidChallenge("This sign-in challenge cannot be used; sign in again.")
    method = factors.check_code(user, code)
    if method is None:
        left = MAX_ATTEMPTS - found.attempts
        audit.record(
            AuditEventType.SECOND_FACTOR_FAILED,
            user_id=user.id,
            actor_id=user.id,
            details={"attempts_left": left},
        )
        if left <= 0:
            repository.take(digest)
        db.session.commit()
        raise errors.InvalidCode("The code is wrong or was used already.", attempts_left=left)
    if not repository.take(digest):
        # A concurrent request redeemed it first.
        db.session.rollback()
        raise errors.InvalidChallenge("This sign-in challenge cannot be used; sign in again.")
    return _finish_challenge(user, client, methods=[*found.methods, method])


def _finish_challenge(user: User, client: ClientInfo, *, methods: list[str]) -> SignIn:
    # A password sign-in gets its device token once the whole sign-in succeeded.
    device = throttle.device_token_for(user.email_normalized) if "pwd" in methods else None
    result = finish(user, client, methods=methods, device_token=device)
    assert isinstance(result, SignIn)  # a second factor is among the methods
    return result


def open_session(
    user: User, client: ClientInfo, *, amr: list[str], auth_time: datetime | None = None
) -> TokenPair:
    """Add a session for ``user`` (no commit) and return its first token pair.

    ``auth_time`` defaults to the session's creation.
    """
    now = utcnow()
    auth_time = auth_time or now
    # Its id is made here, not by a flush: the commit writes the row with the audit event.
    session = SessionRepository().stage(
        Session(
            id=uuid.uuid4(),
            user_id=user.id,
            refresh_jti=new_token_id(),
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=current_settings().REFRESH_TOKEN_TTL),
            ip=client.ip,
            user_agent=client.user_agent,
            amr=amr,
            auth_time=auth_time,
        )
    )
    return issue(user, session.id, session.refresh_jti, amr=amr, auth_time=auth_time)


def issue(
    user: User,
    session_id: uuid.UUID,
    refresh_jti: str,
    *,
    amr: list[str],
    auth_time: datetime,
) -> TokenPair:
    """Sign a token pair for a session."""
    settings = current_settings()
    return issue_token_pair(
        user_id=user.id,
        session_id=session_id,
        refresh_jti=refresh_jti,
        token_version=user.token_version,
        access_ttl=settings.ACCESS_TOKEN_TTL,
        refresh_ttl=settings.REFRESH_TOKEN_TTL,
        amr=amr,
        auth_time=auth_time,
    )
