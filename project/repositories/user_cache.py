"""Cache-aside copies of user rows in Redis, dropped whenever a user row changes."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction

from project.core import metrics
from project.extensions import redis_client
from project.models import Role, User

logger = logging.getLogger(__name__)

TTL = 300
# An invalidation leaves a short-lived tombstone instead of deleting the key: a request that
# read the old row just before the commit cannot write it back (its SET NX fails).
TOMBSTONE = "-"
TOMBSTONE_TTL = 10
FIELDS = (
    "email",
    "email_normalized",
    "full_name",
    "is_active",
    "email_verified",
    "token_version",
)
PENDING = "warden.changed_users"


def _key(user_id: uuid.UUID) -> str:
    return f"warden:user:{user_id}"


def _encode(user: User) -> str:
    data: dict[str, Any] = {field: getattr(user, field) for field in FIELDS}
    data |= {
        "id": str(user.id),
        "role": user.role.value,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }
    return json.dumps(data)


def _decode(raw: str) -> User:
    data = json.loads(raw)
    # A detached copy without the password hash: enough to authorize and to display.
    return User(
        id=uuid.UUID(data["id"]),
        role=Role(data["role"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        **{field: data[field] for field in FIELDS},
    )


class UserCache:
    """Users by id in Redis; every method degrades to a miss or a no-op without Redis."""

    def __init__(self, client: Redis | None = None) -> None:
        self.client = client if client is not None else redis_client.client

    def get(self, user_id: uuid.UUID) -> User | None:
        """A detached copy of the user, or None on a miss."""
        if self.client is None:
            return None
        try:
            raw = self.client.get(_key(user_id))
        except RedisError as exc:
            logger.warning("user cache read failed: %s", type(exc).__name__)
            raw = None
        return self.parse(raw)

    @staticmethod
    def key(user_id: uuid.UUID) -> str:
        """The Redis key of a user's copy (for callers that batch reads)."""
        return _key(user_id)

    @staticmethod
    def parse(raw: object) -> User | None:
        """Decode a value read from the user's key; None (a miss) for nothing or a tombstone."""
        if raw is None or raw == TOMBSTONE:
            metrics.USER_CACHE.labels("miss").inc()
            return None
        metrics.USER_CACHE.labels("hit").inc()
        return _decode(str(raw))

    def put(self, user: User) -> None:
        """Remember a user read from the database, unless a tombstone says it just changed."""
        if self.client is None:
            return
        try:
            self.stage_put(self.client, user)
        except RedisError as exc:
            logger.warning("user cache write failed: %s", type(exc).__name__)

    @staticmethod
    def stage_put(target: Redis | Pipeline, user: User) -> None:
        """Write the user's copy with ``target`` (a client, or a pipeline to batch it)."""
        target.set(_key(user.id), _encode(user), ex=TTL, nx=True)

    def invalidate(self, user_ids: set[uuid.UUID]) -> None:
        """Drop cached copies of these users on every instance."""
        if self.client is None or not user_ids:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            for user_id in user_ids:
                pipeline.set(_key(user_id), TOMBSTONE, ex=TOMBSTONE_TTL)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("user cache invalidation failed: %s", type(exc).__name__)


def _collect(session: OrmSession, _context: UOWTransaction, _instances: object) -> None:
    changed = {
        obj.id for obj in (*session.dirty, *session.deleted) if isinstance(obj, User) and obj.id
    }
    if changed:
        session.info.setdefault(PENDING, set()).update(changed)


def _after_commit(session: OrmSession) -> None:
    changed = session.info.pop(PENDING, None)
    if changed:
        UserCache().invalidate(changed)


def _after_rollback(session: OrmSession, _previous_transaction: object) -> None:
    session.info.pop(PENDING, None)


def install_invalidation() -> None:
    """Invalidate the cache after any commit that changed or deleted a user row.

    Hooking the ORM session, rather than each use case, means a new code path that edits a
    user cannot forget to.
    """
    if not event.contains(OrmSession, "before_flush", _collect):
        event.listen(OrmSession, "before_flush", _collect)
        event.listen(OrmSession, "after_commit", _after_commit)
        event.listen(OrmSession, "after_soft_rollback", _after_rollback)
