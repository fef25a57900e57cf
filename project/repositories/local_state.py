"""What a warm token check needs, kept in this worker's memory and kept true by Redis pub/sub.

A worker remembers the sessions it has seen vouched for (by Redis or the database) and a
snapshot of each of their users, so a warm check asks no one. Every change that must be
seen at once (a session ended, a user row changed or deleted) is published on one channel
after its commit; each worker of each instance listens on it in a thread of its own and
forgets what the message names. The memory is trusted only while that channel is known to
be up: the listener pings it every ``HEARTBEAT`` seconds, and with no answer for
``STALE_AFTER`` seconds, or the connection dropped, the check goes back to Redis and the
database. When the channel answers again, the memory is emptied first: what was published
meanwhile was not heard.

An answer is remembered only if no change was heard between the moment it was read and
the moment it is stored (``Mark``), so a message that overtakes a slow read still wins.
Entries also expire after ``LOCAL_TTL`` seconds, which bounds how long a change published
while Redis was unreachable from the publisher (but not from this worker) can go unseen.

The per-account rate limit is counted with permits leased from Redis in batches
(``Permits``): a request is counted in Redis only when this worker has none left.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from project.models import User

logger = logging.getLogger(__name__)

STATE_KEY = "warden.local_state"
HEARTBEAT = 1.0
STALE_AFTER = 3.0
LOCAL_TTL = 10.0
# Entries kept per worker; past it the oldest is dropped (it is read again when needed).
MAX_ENTRIES = 10_000
RECONNECT_WAIT = 0.5


def channel(target: Redis | Pipeline) -> str:
    """The channel of one Redis database (pub/sub channels are shared by all databases)."""
    return f"warden:changes:{target.connection_pool.connection_kwargs.get('db', 0)}"


def stage_announcement(
    target: Redis | Pipeline,
    *,
    sessions: Iterable[uuid.UUID] = (),
    users: Iterable[uuid.UUID] = (),
) -> None:
    """Publish ended sessions and changed users to every worker (batched in a pipeline)."""
    message = {"sessions": [str(s) for s in sessions], "users": [str(u) for u in users]}
    if message["sessions"] or message["users"]:
        target.publish(channel(target), json.dumps(message))


def forget_here(*, sessions: Iterable[uuid.UUID] = (), users: Iterable[uuid.UUID] = ()) -> None:
    """Forget at once in this worker what it has just announced (its listener is async)."""
    state: LocalState | None = current_app.extensions.get(STATE_KEY)
    if state is not None:
        state.forget(sessions=list(sessions), users=list(users))


@dataclass(frozen=True)
class Mark:
    """When an answer was read: remembered only if nothing was heard since."""

    generation: int
    changes: int


class Permits:
    """Per-account request permits leased from Redis, valid within their windows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left: dict[uuid.UUID, tuple[tuple[int, ...], int]] = {}

    def held(self, user_id: uuid.UUID, windows: tuple[int, ...]) -> bool:
        """Whether a permit of ``user_id`` leased in these windows is left."""
        found = self._left.get(user_id)
        return found is not None and found[0] == windows and found[1] > 0

    def take(self, user_id: uuid.UUID, windows: tuple[int, ...]) -> bool:
        """Spend one permit of ``user_id`` leased in these windows; False if none is left."""
        with self._lock:
            held = self._left.get(user_id)
            if held is None or held[0] != windows or held[1] <= 0:
                return False
            self._left[user_id] = (windows, held[1] - 1)
            return True

    def add(self, user_id: uuid.UUID, windows: tuple[int, ...], count: int) -> None:
        """Keep ``count`` more permits leased in these windows (older windows' are void)."""
        with self._lock:
            if count <= 0:
                self._left.pop(user_id, None)
                return
            if len(self._left) >= MAX_ENTRIES:
                self._left.pop(next(iter(self._left)))
            self._left[user_id] = (windows, count)

    def clear(self) -> None:
        """Return nothing: leased permits simply go unused."""
        with self._lock:
            self._left.clear()


class LocalState:
    """One worker's memory of live sessions and user snapshots, and its listener."""

    def __init__(self, client: Redis | None) -> None:
        self.client = client
        self.permits = Permits()
        self._lock = threading.Lock()
        self._sessions: dict[uuid.UUID, tuple[uuid.UUID, float]] = {}
        self._users: dict[uuid.UUID, tuple[User, float]] = {}
        self.generation = 0  # times the memory was emptied
        self.changes = 0  # messages heard
        self._heard = float("-inf")
        self._listening = False
        self._thread: threading.Thread | None = None
        _STATES.add(self)

    # -- the check's side ------------------------------------------------------------

    def trusted(self) -> bool:
        """Whether the channel is up and was heard from lately."""
        self._ensure_listener()
        return self._listening and time.monotonic() - self._heard < STALE_AFTER

    def vouched_user(
        self, session_id: uuid.UUID, user_id: uuid.UUID, token_version: int
    ) -> User | None:
        """The user snapshot behind a session remembered live, at ``token_version``."""
        now = time.monotonic()
        session = self._sessions.get(session_id)
        if session is None or session[0] != user_id or session[1] < now:
            return None
        found = self._users.get(user_id)
        if found is None or found[1] < now or found[0].token_version != token_version:
            return None
        return found[0]

    def mark(self) -> Mark:
        """Take before reading what ``remember`` will store."""
        return Mark(self.generation, self.changes)

    def remember(self, session_id: uuid.UUID, snapshot: User, mark: Mark) -> None:
        """Keep a live session and a detached snapshot of its active user, unless a change
        was heard since ``mark``."""
        if not snapshot.is_active or self.client is None:
            return
        expires = time.monotonic() + LOCAL_TTL
        with self._lock:
            if mark != self.mark():
                return
            for table in (self._sessions, self._users):
                if len(table) >= MAX_ENTRIES:
                    table.pop(next(iter(table)), None)
            self._sessions[session_id] = (snapshot.id, expires)
            self._users[snapshot.id] = (snapshot, expires)

    def forget(self, *, sessions: Iterable[uuid.UUID], users: Iterable[uuid.UUID]) -> None:
        """Drop these sessions and users; a read in flight will not store them back."""
        with self._lock:
            self.changes += 1
            for session_id in sessions:
                self._sessions.pop(session_id, None)
            for user_id in users:
                self._users.pop(user_id, None)

    def clear(self) -> None:
        """Forget every session and user (what was published unheard may concern any)."""
        with self._lock:
            self.generation += 1
            self.changes += 1
            self._sessions.clear()
            self._users.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    # -- the listener ----------------------------------------------------------------

    def _ensure_listener(self) -> None:
        if self.client is None:
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=_listen,
                        args=(weakref.ref(self), _bytes_client(self.client)),
                        name="warden-local-state",
                        daemon=True,
                    )
                    self._thread.start()

    def _heard_from_channel(self, message: dict[str, Any]) -> None:
        now = time.monotonic()
        kind = message["type"]
        if kind == "subscribe":
            # Up again (or for the first time): what was published meanwhile was missed.
            self.clear()
            self._listening = True
        elif kind == "message":
            data = json.loads(message["data"])
            self.forget(
                sessions=[uuid.UUID(s) for s in data.get("sessions", ())],
                users=[uuid.UUID(u) for u in data.get("users", ())],
            )
        elif now - self._heard >= STALE_AFTER:
            # A heartbeat after a silence: messages may have been lost meanwhile.
            self.clear()
        self._heard = now

    def _lost(self) -> None:
        self._listening = False
        self.clear()

    def _forked(self) -> None:
        # A forked worker inherits the parent's memory and locks, not its thread.
        self._lock = threading.Lock()
        self.permits = Permits()
        self._thread = None
        self._lost()


_STATES: weakref.WeakSet[LocalState] = weakref.WeakSet()


def _after_fork() -> None:
    for state in list(_STATES):
        state._forked()


os.register_at_fork(after_in_child=_after_fork)


def _bytes_client(client: Redis) -> Redis:
    """A client like ``client`` that returns bytes (redis-py's pub/sub PONG parsing needs it)."""
    kwargs = dict(client.connection_pool.connection_kwargs)
    kwargs["decode_responses"] = False
    return Redis(connection_pool=client.connection_pool.__class__(**kwargs))


def _listen(ref: weakref.ReferenceType[LocalState], client: Redis) -> None:
    """Hear the channel for as long as the state lives, reconnecting after a drop."""
    name = None
    while True:
        state = ref()
        if state is None:
            client.close()
            return
        name = name or channel(state.client or client)
        del state
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(name)
            pinged = 0.0
            while (state := ref()) is not None:
                if time.monotonic() - pinged >= HEARTBEAT:
                    pubsub.ping()
                    pinged = time.monotonic()
                message = pubsub.get_message(timeout=HEARTBEAT)
                if message is not None:
                    state._heard_from_channel(_decoded(message))
                del state
        except Exception as exc:  # whatever stops the listener, it starts again
            state = ref()
            if state is not None:
                if state._listening or not isinstance(exc, RedisError | OSError):
                    logger.warning("change channel lost: %s", type(exc).__name__)
                state._lost()
            del state
        finally:
            pubsub.close()
        time.sleep(RECONNECT_WAIT)


def _decoded(message: dict[str, Any]) -> dict[str, Any]:
    data = message.get("data")
    return {**message, "data": data.decode() if isinstance(data, bytes) else data}


def current() -> LocalState:
    """This worker's state for the current app (created on first use)."""
    state: LocalState | None = current_app.extensions.get(STATE_KEY)
    if state is None:
        client: Redis | None = current_app.extensions.get("redis")
        state = current_app.extensions.setdefault(STATE_KEY, LocalState(client))
    return state
