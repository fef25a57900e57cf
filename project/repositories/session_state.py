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
from project.repositories.local_state import forget_here, stage_announcement
from project.repositories.user_cache import TOMBSTONE, UserCache

logger = logging.getLogger(__name__)

REVOKED = "0"
# A live session's marker holds its owner's id, so a token naming another user with this
# session's id is not vouched for here and goes to the database, which refuses it.
# An "active" answer is trusted this long without asking the database again. It bounds how
# long a revocation written while Redis was unreachable can go unseen.
ACTIVE_TTL = 30


# A batch of permits is at most this share of the room left in a window, so the permits
# leased and not yet spent by all workers together stay a small part of the limit.
LEASE_SHARE = 40

# The check's round trip when a worker's memory cannot answer. KEYS: the session's marker,
# the user's copy, then (current, previous) per counter; ARGV: "1" to count only when the
# marker names the token's user and the copy is live ("0": regardless), that user's id,
# the most permits wanted, then (cap, weight, ttl) per counter. A window's room is
# cap - weight * previous - current; permits are granted only if every window has room
# for one, then as many as the smallest share of room allows (up to the most wanted),
# added to every counter atomically so that concurrent leases cannot overshoot and a
# refused request is never counted. The answer: marker and copy, then, if it counted, the
# permits granted (0: refused) and (current, previous) per counter as they were before.
READ_AND_COUNT = f"""
local answer = redis.call('MGET', KEYS[1], KEYS[2])
if ARGV[1] == '1' and (answer[1] ~= ARGV[2] or not answer[2] or answer[2] == '{TOMBSTONE}') then
  return answer
end
local grant = tonumber(ARGV[3])
local counts = {{}}
for c = 1, (#KEYS - 2) / 2 do
  local current = tonumber(redis.call('GET', KEYS[1 + 2 * c]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 + 2 * c]) or '0')
  local room = tonumber(ARGV[3 * c + 1]) - tonumber(ARGV[3 * c + 2]) * previous - current
  local share = 0
  if room >= 1 then share = math.max(1, math.floor(room / {LEASE_SHARE})) end
  grant = math.min(grant, share)
  counts[#counts + 1] = current
  counts[#counts + 1] = previous
end
if grant > 0 then
  for c = 1, (#KEYS - 2) / 2 do
    if redis.call('INCRBY', KEYS[1 + 2 * c], grant) == grant then
      redis.call('EXPIRE', KEYS[1 + 2 * c], ARGV[3 * c + 3])
    end
  end
end
answer[3] = grant
for i = 1, #counts do answer[3 + i] = counts[i] end
return answer
"""
_SCRIPTS: WeakKeyDictionary[Redis, Script] = WeakKeyDictionary()


def _key(session_id: uuid.UUID) -> str:
    return f"warden:session:{session_id}"


@dataclass(frozen=True)
class Counter:
    """A request counter whose limit the caller sets: Redis adds one only within ``cap``."""

    current: str  # the key counted in
    previous: str  # the key whose count still weighs on it
    cap: int  # weight * previous + current may reach this, not pass it
    weight: float  # how much of ``previous`` still counts, 0 to 1
    ttl: int  # seconds ``current`` lives once created


@dataclass(frozen=True)
class Tally:
    """What counting found: the permits granted (0: refused), each counter's counts before."""

    granted: int
    counts: list[tuple[int, int]]  # (current, previous) per counter

    @property
    def added(self) -> bool:
        """Whether the request was counted."""
        return self.granted > 0


@dataclass(frozen=True)
class Snapshot:
    """What the per-request round trip found in Redis."""

    revoked: bool  # a revocation marker is set
    user: User | None  # the user's copy, when the marker says active and the copy is live
    tally: Tally | None  # set when the request was counted (only with ``user``)


NOTHING_KNOWN = Snapshot(revoked=False, user=None, tally=None)


def _tally(answer: list[Any]) -> Tally | None:
    if len(answer) < 3:
        return None
    counts = [(int(answer[i]), int(answer[i + 1])) for i in range(3, len(answer), 2)]
    return Tally(granted=int(answer[2]), counts=counts)


def _script(client: Redis) -> Script:
    script = _SCRIPTS.get(client)
    if script is None:
        script = _SCRIPTS[client] = client.register_script(READ_AND_COUNT)
    return script


class SessionStateCache:
    """Per-session active/revoked markers with TTLs; every method is a no-op without Redis."""

    def __init__(self, client: Redis | None = None) -> None:
        self.client = client if client is not None else redis_client.client

    def read(
        self,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        token_version: int,
        counters: Sequence[Counter] = (),
        permits: int = 1,
    ) -> Snapshot:
        """The session's marker and the user's copy at ``token_version``, in one round trip.

        When both vouch for the token, the same round trip counts the request in
        ``counters``, leasing up to ``permits``. Redis unreachable, nothing is known.
        """
        if self.client is None:
            return NOTHING_KNOWN
        keys = [_key(session_id), UserCache.key(user_id, token_version)]
        try:
            if counters:
                answer = self._run(keys, user_id, counters, permits, only_if_vouched=True)
            else:
                answer = self.client.mget(keys)
        except RedisError as exc:
            logger.warning("session state read failed: %s", type(exc).__name__)
            return NOTHING_KNOWN
        active = answer[0] == str(user_id)
        return Snapshot(
            revoked=answer[0] == REVOKED,
            user=UserCache.parse(answer[1]) if active else None,
            tally=_tally(answer),
        )

    def count(
        self, session_id: uuid.UUID, user: User, counters: Sequence[Counter], permits: int = 1
    ) -> Tally | None:
        """Count a request already vouched for, leasing up to ``permits``; None if Redis did
        not answer."""
        if self.client is None:
            return None
        keys = [_key(session_id), UserCache.key(user.id, user.token_version)]
        try:
            return _tally(self._run(keys, user.id, counters, permits, only_if_vouched=False))
        except RedisError as exc:
            logger.warning("rate limit count failed: %s", type(exc).__name__)
            return None

    def _run(
        self,
        keys: list[str],
        user_id: uuid.UUID,
        counters: Sequence[Counter],
        permits: int,
        *,
        only_if_vouched: bool,
    ) -> Any:
        assert self.client is not None
        args: list[str | int] = ["1" if only_if_vouched else "0", str(user_id), permits]
        for counter in counters:
            args += (counter.cap, repr(counter.weight), counter.ttl)
        windows = [key for counter in counters for key in (counter.current, counter.previous)]
        return _script(self.client)(keys=[*keys, *windows], args=args)

    def remember_active_with_user(self, session_id: uuid.UUID, user: User) -> None:
        """Cache an active answer naming the session's user, and the user's copy, in one round trip.

        Both NX: a revocation marker or a user tombstone already there wins.
        """
        if self.client is None:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            pipeline.set(_key(session_id), str(user.id), ex=ACTIVE_TTL, nx=True)
            UserCache.stage_put(pipeline, user)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("session state write failed: %s", type(exc).__name__)

    def mark_revoked(self, session_ids: Iterable[uuid.UUID], *, ttl: int) -> None:
        """Record revocations for ``ttl`` seconds (as long as an access token can live), and
        tell every worker to forget these sessions."""
        ids = list(session_ids)
        forget_here(sessions=ids)
        if self.client is None or not ids:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            for session_id in ids:
                pipeline.set(_key(session_id), REVOKED, ex=ttl)
            stage_announcement(pipeline, sessions=ids)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("session revocation write failed: %s", type(exc).__name__)
