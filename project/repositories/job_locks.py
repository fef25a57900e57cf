"""One runner per job across every instance: a Redis lock, or a lock in this process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from project.extensions import redis_client

logger = logging.getLogger("warden.locks")
_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


class JobLock(Protocol):
    """A held lock the runner keeps alive between steps."""

    def keep(self) -> None:
        """Renew the lock's lease; raise LockLostError when another runner took it."""


class LockLostError(RuntimeError):
    """The lease ran out and another runner may hold the lock now."""


class _RedisLease:
    def __init__(self, lock: Lock) -> None:
        self.lock = lock

    def keep(self) -> None:
        try:
            self.lock.reacquire()
        except LockError as exc:
            raise LockLostError(str(exc)) from None


class _LocalLease:
    def keep(self) -> None:
        return None


@contextmanager
def hold(name: str, *, ttl: int) -> Iterator[JobLock | None]:
    """Yield a lease on ``name``, or None when another runner holds it.

    With Redis the lease expires after ``ttl`` seconds unless kept, so a runner that dies
    frees the job; release deletes the key only while this runner's token is in it.
    """
    client = redis_client.client
    if client is None:
        with _local_lock(name) as held:
            yield _LocalLease() if held else None
        return
    lock = client.lock(f"warden:lock:{name}", timeout=ttl, blocking=False, thread_local=False)
    if not lock.acquire():
        yield None
        return
    try:
        yield _RedisLease(lock)
    finally:
        try:
            lock.release()
        except (LockError, RedisError) as exc:
            logger.warning("lock %s was not released: %s", name, type(exc).__name__)


@contextmanager
def _local_lock(name: str) -> Iterator[bool]:
    with _local_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()
