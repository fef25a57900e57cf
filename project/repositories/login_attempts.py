"""Counters of failed logins, in Redis when configured, else in process memory."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from project.extensions import redis_client

logger = logging.getLogger(__name__)

# Past this many counters, expired ones are swept so memory stays bounded.
MEMORY_LIMIT = 10_000


@dataclass
class Attempts:
    """Consecutive failures behind one key and when its lock ends (epoch seconds)."""

    failures: int = 0
    locked_until: float = 0.0


class AttemptStore(Protocol):
    """Storage of attempt counters and trust marks."""

    def get(self, key: str) -> Attempts:
        """Return the counter for ``key``."""

    def save(self, key: str, attempts: Attempts, *, ttl: int) -> None:
        """Store the counter for ``ttl`` seconds."""

    def add_failure(self, key: str, *, ttl: int) -> int:
        """Count one more failure atomically and return the new count."""

    def delete(self, *keys: str) -> None:
        """Forget counters or marks."""

    def mark(self, key: str, *, ttl: int) -> None:
        """Set a flag for ``ttl`` seconds."""

    def is_marked(self, key: str) -> bool:
        """Whether the flag is set."""


class RedisAttemptStore:
    """Counters shared by every instance; Redis errors fail open (no throttling)."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    def get(self, key: str) -> Attempts:
        try:
            failures, until = self.client.hmget(key, "failures", "until")
        except RedisError as exc:
            logger.warning("login throttle read failed: %s", type(exc).__name__)
            return Attempts()
        return Attempts(int(failures or 0), float(until or 0))

    def save(self, key: str, attempts: Attempts, *, ttl: int) -> None:
        try:
            pipeline = self.client.pipeline()
            pipeline.hset(key, "until", attempts.locked_until)
            pipeline.expire(key, ttl)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("login throttle write failed: %s", type(exc).__name__)

    def add_failure(self, key: str, *, ttl: int) -> int:
        try:
            pipeline = self.client.pipeline()
            pipeline.hincrby(key, "failures", 1)
            pipeline.expire(key, ttl)
            count, _ = pipeline.execute()
            return int(count)
        except RedisError as exc:
            logger.warning("login throttle write failed: %s", type(exc).__name__)
            return 0

    def delete(self, *keys: str) -> None:
        try:
            self.client.delete(*keys)
        except RedisError as exc:
            logger.warning("login throttle reset failed: %s", type(exc).__name__)

    def mark(self, key: str, *, ttl: int) -> None:
        try:
            self.client.set(key, "1", ex=ttl)
        except RedisError as exc:
            logger.warning("login trust write failed: %s", type(exc).__name__)

    def is_marked(self, key: str) -> bool:
        try:
            return bool(self.client.exists(key))
        except RedisError:
            return False


class MemoryAttemptStore:
    """Counters in this process only: right for one process (make run), not for a fleet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Attempts, float]] = {}
        self._marks: dict[str, float] = {}

    def _live(self, key: str) -> Attempts:
        attempts, expires = self._entries.get(key, (Attempts(), 0.0))
        return attempts if expires > time.time() else Attempts()

    def get(self, key: str) -> Attempts:
        with self._lock:
            live = self._live(key)
            return Attempts(live.failures, live.locked_until)

    def save(self, key: str, attempts: Attempts, *, ttl: int) -> None:
        with self._lock:
            live = self._live(key)
            live.locked_until = attempts.locked_until
            self._entries[key] = (live, time.time() + ttl)

    def add_failure(self, key: str, *, ttl: int) -> int:
        with self._lock:
            if len(self._entries) > MEMORY_LIMIT:
                self._forget_expired()
            live = self._live(key)
            live.failures += 1
            self._entries[key] = (live, time.time() + ttl)
            return live.failures

    def _forget_expired(self) -> None:
        now = time.time()
        self._entries = {key: entry for key, entry in self._entries.items() if entry[1] > now}
        self._marks = {key: until for key, until in self._marks.items() if until > now}

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
                self._marks.pop(key, None)

    def mark(self, key: str, *, ttl: int) -> None:
        with self._lock:
            self._marks[key] = time.time() + ttl

    def is_marked(self, key: str) -> bool:
        with self._lock:
            return self._marks.get(key, 0.0) > time.time()


def attempt_store() -> AttemptStore:
    """The store for the current app: Redis when configured, else this process's memory."""
    client = redis_client.client
    if client is not None:
        return RedisAttemptStore(client)
    store: AttemptStore = current_app.extensions.setdefault(
        "warden.login_attempts", MemoryAttemptStore()
    )
    return store
