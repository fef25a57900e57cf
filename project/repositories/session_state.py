"""Hot revocation state of sessions in Redis; the database stays the source of truth."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from redis import Redis
from redis.commands.core import Script
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


# The session check's one round trip: read the marker and the user's copy and, for each
# rate-limit window, count this request in the current window and read the previous one.
LOOKUP_AND_COUNT = """
local answer = redis.call('MGET', KEYS[1], KEYS[2])
for i = 3, #KEYS, 2 do
  local current = redis.call('INCR', KEYS[i])
  if current == 1 then redis.call('EXPIRE', KEYS[i], ARGV[(i - 1) / 2]) end
  answer[#answer + 1] = current
  answer[#answer + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
end
return answer
"""
_SCRIPTS: WeakKeyDictionary[Redis, Script] = WeakKeyDictionary()


def _key(session_id: uuid.UUID) -> str:
    return f"warden:session:{session_id}"


@dataclass(frozen=True)
class Counter:
    """One rate-limit window to count a request in: its key, the previous window's, a TTL."""

    current: str
    previous: str
    ttl: int


def _script(client: Redis) -> Script:
    script = _SCRIPTS.get(client)
    if script is None:
        script = _SCRIPTS[client] = client.register_script(LOOKUP_AND_COUNT)
    return script


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
        self, session_id: uuid.UUID, user_id: uuid.UUID, counters: Sequence[Counter] = ()
    ) -> tuple[bool | None, User | None, list[tuple[int, int]] | None]:
        """The session's state, the cached user and each counter's (current, previous) count.

        One round trip (the hot path). The counts are None when Redis did not count.
        """
        if self.client is None:
            return None, None, None
        keys = [_key(session_id), UserCache.key(user_id)]
        try:
            if counters:
                for counter in counters:
                    keys += (counter.current, counter.previous)
                answer: list[Any] = _script(self.client)(
                    keys=keys, args=[counter.ttl for counter in counters]
                )
            else:
                answer = self.client.mget(keys)
        except RedisError as exc:
            logger.warning("session state lookup failed: %s", type(exc).__name__)
            return None, None, None
        state, raw_user = answer[0], answer[1]
        counts = [(int(answer[i]), int(answer[i + 1])) for i in range(2, len(answer), 2)]
        known = None if state is None else state == ACTIVE
        return known, UserCache.parse(raw_user) if known else None, counts if counters else None

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
