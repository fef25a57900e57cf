"""Queries on login sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, or_, select, update

from project.models import Session, User
from project.repositories.base import BaseRepository
from project.repositories.user_cache import detached_copy, snapshot, snapshot_columns

# Built once: rotation runs on every refresh, and building the statement cost more CPU
# than executing it. The values arrive as parameters. With the user's condition below, the
# WHERE clause is the whole check of a refresh token: the session is live, the token is
# its current one, and its user is active.
_ROTATE = (
    update(Session)
    .where(
        Session.id == bindparam("session_id"),
        Session.user_id == bindparam("token_user_id"),
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
# PostgreSQL checks the user and returns it in the same statement, with how and when the
# session was authenticated, which the new access token carries on.
_ROTATE_RETURNING_USER = _ROTATE.where(
    Session.user_id == User.id, User.is_active.is_(True)
).returning(Session.amr, Session.auth_time, *snapshot_columns())
# SQLite cannot return another table's columns from an UPDATE: it returns the user's id.
_ROTATE_RETURNING_ID = _ROTATE.where(
    Session.user_id.in_(select(User.id).where(User.is_active.is_(True)))
).returning(Session.user_id, Session.amr, Session.auth_time)


class Rotation(NamedTuple):
    """What a rotation hands the new tokens: the user's snapshot and the session's sign-in."""

    user: User
    amr: list[str]
    auth_time: datetime


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
        user_id: uuid.UUID,
        presented_jti: str,
        new_jti: str,
        now: datetime,
        expires_at: datetime,
        ip: str | None,
        user_agent: str | None,
    ) -> Rotation | None:
        """Rotate the session's refresh token id; return its user and amr, or None if refused.

        Refused unless the session is live, ``presented_jti`` is its current token and its
        user is active. A single conditional UPDATE makes two concurrent refreshes of one
        token race safely: exactly one wins.
        """
        params = {
            "session_id": session_id,
            "token_user_id": user_id,
            "presented_jti": presented_jti,
            "new_jti": new_jti,
            "now": now,
            "expires_at": expires_at,
            "ip": ip,
            "user_agent": user_agent,
        }
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            # Core, not the ORM: the snapshot needs no identity map, and the statement's
            # cache key is computed once.
            row = connection.execute(_ROTATE_RETURNING_USER, params).one_or_none()
            return None if row is None else Rotation(snapshot(row[2:]), row[0], row[1])
        rotated = self.session.execute(_ROTATE_RETURNING_ID, params).one_or_none()
        if rotated is None:
            return None
        user = self.session.get(User, rotated[0], populate_existing=True)
        return None if user is None else Rotation(detached_copy(user), rotated[1], rotated[2])

    def set_authentication(
        self, session_id: uuid.UUID, *, amr: list[str], auth_time: datetime
    ) -> None:
        """Record a factor proved again for a live session (a step-up)."""
        self.session.execute(
            update(Session)
            .where(Session.id == session_id)
            .values(amr=amr, auth_time=auth_time)
            .execution_options(synchronize_session=False)
        )

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
        # Expired sessions are dead already: they are neither revoked nor counted as ended.
        query = update(Session).where(
            Session.user_id == user_id, Session.revoked_at.is_(None), Session.expires_at > now
        )
        if keep is not None:
            query = query.where(Session.id != keep)
        result = self.session.execute(
            query.values(revoked_at=now)
            .returning(Session.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())

    def ended_before(
        self, cutoff: datetime, *, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        """Ids of sessions revoked or expired before ``cutoff``, in id order after ``after``.

        No index on the ending times: every refresh would have to update it.
        """
        ended = or_(Session.revoked_at < cutoff, Session.expires_at < cutoff)
        return self.ids_where(ended, after=after, limit=limit)
