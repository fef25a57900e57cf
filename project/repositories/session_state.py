"""Hot revocation state of sessions in Redis; the database stays the source of truth."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from redis import Redis
from redis.exceptions import RedisError

from project.extensions import redis_client
from project.models import User
from project.repositories.user_cache import UserCache

logger = logging.getLogger(__name__)

ACTIVE = "1"
REVOKED = "0"
# An "active" answer is trusted this long without asking the database again. It bounds how
# long a revocation written while Redis was unreachable can go unseen.
ACTIVE_TTL = 30


def _key(session_id: uuid.UUID) -> str:
    return f"warden:session:{session_id}"


class SessionStateCache:
    """Per-session active/revoked markers with TTLs; every method is a no-op without Redis."""

    def __init__(self, client: Redis | None = None) -> None:
        self.client = client if client is not None else redis_client.client

    def lookup(self, session_id: uuid.UUID) -> bool | None:
        """True if known active, False if known revoked, None if unknown (ask the database)."""
        if self.client is None:
            return None
        try:
            state = self.client.get(_key(session_id))
        except RedisError as exc:
            logger.warning("session state lookup failed: %s", type(exc).__name__)
            return None
        return None if state is None else state == ACTIVE

    def lookup_with_user(
        self, session_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[bool | None, User | None]:
        """The session's state and the cached user, in one round trip (the hot path)."""
        if self.client is None:
            return None, None
        try:
            state, raw_user = self.client.mget(_key(session_id), UserCache.key(user_id))
        except RedisError as exc:
            logger.warning("session state lookup failed: %s", type(exc).__name__)
            return None, None
        known = None if state is None else state == ACTIVE
        return known, UserCache.parse(raw_user) if known else None

    def remember_active_with_user(self, session_id: uuid.UUID, user: User) -> None:
        """Cache an active answer and the user's copy in one round trip.

        Both NX: a revocation marker or a user tombstone already there wins.
        """
        if self.client is None:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            pipeline.set(_key(session_id), ACTIVE, ex=ACTIVE_TTL, nx=True)
            UserCache.stage_put(pipeline, user)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("session state write failed: %s", type(exc).__name__)

    def mark_revoked(self, session_ids: Iterable[uuid.UUID], *, ttl: int) -> None:
        """Record revocations for ``ttl`` seconds (as long as an access token can live)."""
        ids = list(session_ids)
        if self.client is None or not ids:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            for session_id in ids:
                pipeline.set(_key(session_id), REVOKED, ex=ttl)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("session revocation write failed: %s", type(exc).__name__)
