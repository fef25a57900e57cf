"""Counters of failed logins, in Redis when configured, else in process memory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from project.extensions import redis_client

logger = logging.getLogger(__name__)

# Past this many counters, expired ones are swept so memory stays bounded.
MEMORY_LIMIT = 10_000


def backoff(failures: int, *, free: int, cap: int) -> int:
    """Seconds to wait after ``failures`` consecutive failures: 1, 2, 4 … past ``free``, capped."""
    if failures <= free:
        return 0
    return int(min(cap, 2 ** min(failures - free - 1, 32)))


class Limit(NamedTuple):
    """One counter an attempt is charged to: its key, its free failures and its longest lock."""

    key: str
    free: int
    cap: int


@dataclass
class Attempts:
    """Consecutive failures behind one key and when its lock ends (epoch seconds)."""

    failures: int = 0
    locked_until: float = 0.0


class AttemptStore(Protocol):
    """Storage of attempt counters and one-off marks."""

    def reserve(self, limits: Sequence[Limit], *, ttl: int) -> float:
        """Seconds left of the longest lock; when none, count a failure on every limit at once."""

    def settle(self, forget: str, give_back: str | None) -> None:
        """Forget one counter, and take back one reserved failure of another, at once."""

    def delete(self, *keys: str) -> None:
        """Forget counters or marks."""

    def mark_once(self, key: str, *, ttl: int) -> bool:
        """Set a flag for ``ttl`` seconds; False when it was already set."""


# The check and the reservation are one step, so at a lock's end exactly one attempt of any
# number of instances and workers passes and locks again before a password is hashed.
RESERVE = """
local now = tonumber(ARGV[1])
local wait = 0
for _, key in ipairs(KEYS) do
  local left = tonumber(redis.call('HGET', key, 'until') or '0') - now
  if left > wait then wait = left end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  local free, cap = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  if failures > free then
    redis.call('HSET', key, 'until', now + math.min(cap, 2 ^ math.min(failures - free - 1, 32)))
  end
  redis.call('EXPIRE', key, ARGV[2])
end
return '0'
"""


class RedisAttemptStore:
    """Counters shared by every instance; Redis errors fail open (no throttling)."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    def reserve(self, limits: Sequence[Limit], *, ttl: int) -> float:
        args: list[float | int] = [time.time(), ttl]
        for limit in limits:
            args += [limit.free, limit.cap]
        try:
            wait = self.client.register_script(RESERVE)(keys=[k for k, _, _ in limits], args=args)
        except RedisError as exc:
            logger.warning("login throttle write failed: %s", type(exc).__name__)
            return 0.0
        return float(wait)

    def settle(self, forget: str, give_back: str | None) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(forget)
        if give_back is not None:
            pipe.hincrby(give_back, "failures", -1)
        try:
            pipe.execute()
        except RedisError as exc:
            logger.warning("login throttle write failed: %s", type(exc).__name__)

    def delete(self, *keys: str) -> None:
        try:
            self.client.delete(*keys)
        except RedisError as exc:
            logger.warning("login throttle reset failed: %s", type(exc).__name__)

    def mark_once(self, key: str, *, ttl: int) -> bool:
        try:
            return bool(self.client.set(key, "1", ex=ttl, nx=True))
        except RedisError as exc:
            logger.warning("login throttle mark failed: %s", type(exc).__name__)
            return False


class MemoryAttemptStore:
    """Counters in this process only: right for one process (make run), not for a fleet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Attempts, float]] = {}
        self._marks: dict[str, float] = {}

    def _live(self, key: str, now: float) -> Attempts:
        attempts, expires = self._entries.get(key, (Attempts(), 0.0))
        return attempts if expires > now else Attempts()

    def reserve(self, limits: Sequence[Limit], *, ttl: int) -> float:
        with self._lock:
            now = time.time()
            if len(self._entries) > MEMORY_LIMIT:
                self._forget_expired(now)
            counters = [self._live(limit.key, now) for limit in limits]
            wait = max((c.locked_until - now for c in counters), default=0.0)
            if wait > 0:
                return wait
            for limit, counter in zip(limits, counters, strict=True):
                counter.failures += 1
                delay = backoff(counter.failures, free=limit.free, cap=limit.cap)
                if delay:
                    counter.locked_until = now + delay
                self._entries[limit.key] = (counter, now + ttl)
            return 0.0

    def settle(self, forget: str, give_back: str | None) -> None:
        with self._lock:
            self._entries.pop(forget, None)
            counter = self._entries.get(give_back) if give_back is not None else None
            if counter is not None:
                counter[0].failures = max(0, counter[0].failures - 1)

    def _forget_expired(self, now: float) -> None:
        self._entries = {key: entry for key, entry in self._entries.items() if entry[1] > now}
        self._marks = {key: until for key, until in self._marks.items() if until > now}

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
                self._marks.pop(key, None)

    def mark_once(self, key: str, *, ttl: int) -> bool:
        with self._lock:
            now = time.time()
            if self._marks.get(key, 0.0) > now:
                return False
            self._marks[key] = now + ttl
            return True


def attempt_store() -> AttemptStore:
    """The store for the current app: Redis when configured, else this process's memory."""
    client = redis_client.client
    if client is not None:
        return RedisAttemptStore(client)
    store: AttemptStore = current_app.extensions.setdefault(
        "warden.login_attempts", MemoryAttemptStore()
    )
    return store
