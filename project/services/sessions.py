"""Listing and ending login sessions; every instance sees a revocation on its next request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from project.core import errors, metrics
from project.core.settings import current_settings
from project.extensions import db
from project.models import AuditEventType, LogoutScope
from project.models.types import utcnow
from project.repositories import SessionRepository
from project.repositories.session_state import SessionStateCache
from project.services import audit


@dataclass(frozen=True)
class ActiveSession:
    """A live session as its owner sees it."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool
    amr: list[str]
    auth_time: datetime


def publish_revocations(session_ids: list[uuid.UUID], *, cause: str) -> None:
    """Tell every instance, through Redis, that these sessions ended (after the commit)."""
    metrics.REVOCATIONS.labels(cause).inc(len(session_ids))
    ttl = current_settings().ACCESS_TOKEN_TTL + int(current_app.config["JWT_DECODE_LEEWAY"])
    SessionStateCache().mark_revoked(session_ids, ttl=ttl)


def end_sessions(user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Revoke a user's live sessions except ``keep``, without committing; return their ids."""
    return SessionRepository().revoke_all_for_user(user_id, now=utcnow(), keep=keep)


def list_sessions(*, user_id: uuid.UUID, current_session_id: uuid.UUID) -> list[ActiveSession]:
    """Return the caller's live sessions, marking the one making the request."""
    return [
        ActiveSession(
            id=session.id,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            ip=session.ip,
            user_agent=session.user_agent,
            current=session.id == current_session_id,
            amr=session.amr,
            auth_time=session.auth_time,
        )
        for session in SessionRepository().active_for_user(user_id, now=utcnow())
    ]


def revoke_session(*, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the caller's sessions; another user's id is reported as not found."""
    repository = SessionRepository()
    session = repository.get(session_id)
    if session is None or session.user_id != user_id or not session.is_active_at(utcnow()):
        raise errors.NotFound("No active session with this id.")
    revoked = repository.revoke([session_id], now=utcnow())
    if not revoked:
        # Ended by a concurrent request between the read and the update.
        raise errors.NotFound("No active session with this id.")
    audit.record(
        AuditEventType.SESSION_REVOKED, user_id=user_id, details={"session_id": str(session_id)}
    )
    db.session.commit()
    publish_revocations(revoked, cause="session_revoked")


def logout(*, user_id: uuid.UUID, session_id: uuid.UUID, scope: LogoutScope) -> None:
    """End this session, the others, or all of the user's sessions."""
    if scope is LogoutScope.LOCAL:
        revoked = SessionRepository().revoke([session_id], now=utcnow())
    else:
        keep = session_id if scope is LogoutScope.OTHERS else None
        revoked = end_sessions(user_id, keep=keep)
    audit.record(
        AuditEventType.LOGOUT,
        user_id=user_id,
        details={"scope": scope.value, "sessions": len(revoked)},
    )
    db.session.commit()
    publish_revocations(revoked, cause=f"logout_{scope.value}")
