"""Queries on login sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update

from project.models import Session, User
from project.repositories.base import BaseRepository

# Built once: rotation runs on every refresh, and building the statement cost more CPU
# than executing it. The values arrive as parameters.
_ROTATE = (
    update(Session)
    .where(
        Session.id == bindparam("session_id"),
        Session.refresh_jti == bindparam("presented_jti"),
        Session.revoked_at.is_(None),
        Session.expires_at > bindparam("now"),
    )
    .values(
        refresh_jti=bindparam("new_jti"),
        previous_jti=bindparam("presented_jti"),
        rotated_at=bindparam("now"),
        last_used_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
        ip=bindparam("ip"),
        user_agent=bindparam("user_agent"),
    )
    .execution_options(synchronize_session=False)
)


class SessionRepository(BaseRepository[Session]):
    """Sessions by user, with atomic rotation and revocation."""

    model = Session

    def get_with_user(self, session_id: uuid.UUID) -> tuple[Session, User] | None:
        """Return a session and its user in one query, or None.

        Always as the database has them now, even if this request loaded them before (a
        concurrent refresh may have rotated the session meanwhile).
        """
        row = self.session.execute(
            select(Session, User)
            .join(User)
            .where(Session.id == session_id)
            .execution_options(populate_existing=True)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def active_for_user(self, user_id: uuid.UUID, *, now: datetime) -> list[Session]:
        """Return a user's live sessions, newest first."""
        query = (
            select(Session)
            .where(
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > now,
            )
            .order_by(Session.created_at.desc(), Session.id)
        )
        return list(self.session.scalars(query))

    def all_for_user(self, user_id: uuid.UUID) -> list[Session]:
        """Return every session of a user, ended ones included, newest first."""
        query = (
            select(Session)
            .where(Session.user_id == user_id)
            .order_by(Session.created_at.desc(), Session.id)
        )
        return list(self.session.scalars(query))

    def ids_for_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Return the ids of every session of a user, live or not."""
        return list(self.session.scalars(select(Session.id).where(Session.user_id == user_id)))

    def rotate(
        self,
        *,
        session_id: uuid.UUID,
        presented_jti: str,
        new_jti: str,
        now: datetime,
        expires_at: datetime,
        ip: str | None,
        user_agent: str | None,
    ) -> bool:
        """Swap the refresh token id if ``presented_jti`` is still current; True on success.

        A single conditional UPDATE makes two concurrent refreshes of one token race
        safely: exactly one wins.
        """
        result = self.session.execute(
            _ROTATE,
            {
                "session_id": session_id,
                "presented_jti": presented_jti,
                "new_jti": new_jti,
                "now": now,
                "expires_at": expires_at,
                "ip": ip,
                "user_agent": user_agent,
            },
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def revoke(self, session_ids: list[uuid.UUID], *, now: datetime) -> list[uuid.UUID]:
        """Mark live sessions revoked; return the ids that were live."""
        if not session_ids:
            return []
        result = self.session.execute(
            update(Session)
            .where(Session.id.in_(session_ids), Session.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(Session.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())

    def revoke_all_for_user(
        self, user_id: uuid.UUID, *, now: datetime, keep: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        """Revoke every live session of a user, except ``keep``; return the revoked ids."""
        query = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
        if keep is not None:
            query = query.where(Session.id != keep)
        result = self.session.execute(
            query.values(revoked_at=now)
            .returning(Session.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())
