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


# The session check's one round trip: read the marker and the user's copy and, when the
# marker says active (ARGV[1] "1") or unconditionally (ARGV[1] "0"), count the request in
# every rate-limit window if it fits them all (a sliding-window counter, as in `limits`).
# Per window KEYS hold (current, previous) and ARGV (ttl, amount, elapsed). The answer:
# marker, user, then, if it counted, 1 or 0 for "fits" and (current, previous) per window
# as they were before this request.
LOOKUP_AND_COUNT = """
local answer = redis.call('MGET', KEYS[1], KEYS[2])
if ARGV[1] == '1' and answer[1] ~= '1' then return answer end
local windows = (#KEYS - 2) / 2
local fits = 1
local counts = {}
for w = 1, windows do
  local current = tonumber(redis.call('GET', KEYS[1 + 2 * w]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 + 2 * w]) or '0')
  if previous * (1 - tonumber(ARGV[3 * w + 1])) + current + 1 > tonumber(ARGV[3 * w]) then
    fits = 0
  end
  counts[#counts + 1] = current
  counts[#counts + 1] = previous
end
if fits == 1 then
  for w = 1, windows do
    if redis.call('INCR', KEYS[1 + 2 * w]) == 1 then
      redis.call('EXPIRE', KEYS[1 + 2 * w], ARGV[3 * w - 1])
    end
  end
end
answer[3] = fits
for i = 1, #counts do answer[3 + i] = counts[i] end
return answer
"""
_SCRIPTS: WeakKeyDictionary[Redis, Script] = WeakKeyDictionary()


def _key(session_id: uuid.UUID) -> str:
    return f"warden:session:{session_id}"


@dataclass(frozen=True)
class Counter:
    """One rate-limit window to count a request in."""

    current: str  # this window's key
    previous: str  # the previous window's key
    ttl: int  # seconds this window's key lives: the next window reads it too
    amount: int  # requests allowed per window
    elapsed: float  # how far into this window we are, 0 to 1


@dataclass(frozen=True)
class Counted:
    """What counting found: whether the request fit, and each window's counts before it."""

    fits: bool
    counts: list[tuple[int, int]]


def _counted(answer: list[Any]) -> Counted | None:
    if len(answer) < 3:
        return None
    counts = [(int(answer[i]), int(answer[i + 1])) for i in range(3, len(answer), 2)]
    return Counted(fits=int(answer[2]) == 1, counts=counts)


def _run(
    client: Redis, keys: list[str], counters: Sequence[Counter], *, only_if_active: bool
) -> Any:
    args: list[str | int] = ["1" if only_if_active else "0"]
    for counter in counters:
        args += (counter.ttl, counter.amount, repr(counter.elapsed))
    windows = [key for counter in counters for key in (counter.current, counter.previous)]
    return _script(client)(keys=[*keys, *windows], args=args)


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
    ) -> tuple[bool | None, User | None, Counted | None]:
        """The session's state and the cached user, in one round trip (the hot path).

        When the marker says the session is active, the same round trip counts the request
        in ``counters``; otherwise nothing is counted and the third item is None.
        """
        if self.client is None:
            return None, None, None
        keys = [_key(session_id), UserCache.key(user_id)]
        try:
            if counters:
                answer = _run(self.client, keys, counters, only_if_active=True)
            else:
                answer = self.client.mget(keys)
        except RedisError as exc:
            logger.warning("session state lookup failed: %s", type(exc).__name__)
            return None, None, None
        known = None if answer[0] is None else answer[0] == ACTIVE
        user = UserCache.parse(answer[1]) if known else None
        return known, user, _counted(answer)

    def count(
        self, session_id: uuid.UUID, user_id: uuid.UUID, counters: Sequence[Counter]
    ) -> Counted | None:
        """Count a request whose session the database found active; None if Redis failed."""
        if self.client is None:
            return None
        try:
            keys = [_key(session_id), UserCache.key(user_id)]
            answer = _run(self.client, keys, counters, only_if_active=False)
        except RedisError as exc:
            logger.warning("rate limit count failed: %s", type(exc).__name__)
            return None
        return _counted(answer)

    def uncount(self, counters: Sequence[Counter]) -> None:
        """Take back a request counted in ``counters`` (it was refused after all)."""
        if self.client is None:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            for counter in counters:
                pipeline.decr(counter.current)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("rate limit uncount failed: %s", type(exc).__name__)

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
