"""Cache-aside copies of user rows in Redis, dropped whenever a user row changes.

A copy holds every column of ``User`` but its secrets, derived from the model: a column
added to ``User`` is cached without touching this module. Copies are keyed by user id and
token version, so an access token's claims address the copy that can vouch for it: a
token issued before the account's last security change finds no copy.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, event, inspect
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlalchemy.types import TypeDecorator, TypeEngine

from project.core import metrics
from project.extensions import redis_client
from project.models import User
from project.repositories.local_state import forget_here, stage_announcement

logger = logging.getLogger(__name__)

TTL = 300
# An invalidation leaves a short-lived tombstone instead of deleting the key: a request that
# read the old row just before the commit cannot write it back (its SET NX fails).
TOMBSTONE = "-"
TOMBSTONE_TTL = 10
# Never leaves the database: a copy in Redis must not help an attacker who reads it.
SECRETS = frozenset({"password_hash"})
PENDING = "warden.changed_users"
# What a copy's JSON can hold and read back (None aside).
CACHEABLE = (bool, int, str, uuid.UUID, datetime, enum.Enum)


@cache
def cached_columns() -> dict[str, type]:
    """Every column of ``User`` but the secrets, by attribute name, with its Python type."""
    columns = {
        prop.key: _python_type(prop.columns[0].type)
        for prop in inspect(User).column_attrs
        if prop.key not in SECRETS
    }
    unsupported = {key for key, kind in columns.items() if not issubclass(kind, CACHEABLE)}
    if unsupported:
        raise TypeError(f"the user cache cannot store columns {sorted(unsupported)}")
    return columns


@cache
def snapshot_columns() -> tuple[ColumnElement[Any], ...]:
    """The cached columns as a statement returns them, labelled by attribute name."""
    mapper = inspect(User)
    return tuple(mapper.columns[key].label(key) for key in cached_columns())


def snapshot(values: Sequence[Any]) -> User:
    """A detached ``User`` without its secrets, from the values of ``snapshot_columns()``."""
    return User(**dict(zip(cached_columns(), values, strict=True)))


def _python_type(column_type: TypeEngine[Any]) -> type:
    # A TypeDecorator (UTCDateTime) stores what its underlying type does.
    while isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    python_type: type = column_type.python_type
    return python_type


def _encode_value(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value  # bool, int, str, None: JSON as they are


def _reader(python_type: type) -> Callable[[Any], object] | None:
    if issubclass(python_type, uuid.UUID):
        return uuid.UUID
    if issubclass(python_type, datetime):
        return datetime.fromisoformat
    if issubclass(python_type, enum.Enum):
        return python_type
    return None  # bool, int, str: JSON holds them as they are


@cache
def _readers() -> tuple[tuple[str, Callable[[Any], object]], ...]:
    """How to read back the cached columns JSON does not hold as they are."""
    return tuple(
        (key, read) for key, kind in cached_columns().items() if (read := _reader(kind)) is not None
    )


def encode(user: User) -> str:
    """The JSON of a user's copy: every cached column, by its attribute name."""
    return json.dumps({key: _encode_value(getattr(user, key)) for key in cached_columns()})


def decode(raw: str) -> User | None:
    """A detached ``User`` from its copy, without its secrets; None for another shape.

    A copy written by a release with other columns is not trusted to have them all.
    """
    data = json.loads(raw)
    if data.keys() != cached_columns().keys():
        return None
    for key, read in _readers():
        if data[key] is not None:
            data[key] = read(data[key])
    return User(**data)


def detached_copy(user: User) -> User:
    """A copy of ``user`` outside any ORM session and without its secrets."""
    return snapshot([getattr(user, key) for key in cached_columns()])


class UserCache:
    """Users by id and token version in Redis; every method degrades to a no-op without Redis."""

    def __init__(self, client: Redis | None = None) -> None:
        self.client = client if client is not None else redis_client.client

    @staticmethod
    def key(user_id: uuid.UUID, token_version: int) -> str:
        """The Redis key of a user's copy at a token version."""
        return f"warden:user:{user_id}:{token_version}"

    @staticmethod
    def parse(raw: object) -> User | None:
        """Decode a value read from a copy's key; None (a miss) for nothing or a tombstone."""
        user = None if raw is None or raw == TOMBSTONE else decode(str(raw))
        metrics.USER_CACHE.labels("miss" if user is None else "hit").inc()
        return user

    @staticmethod
    def stage_put(target: Redis | Pipeline, user: User) -> None:
        """Write an active user's copy with ``target`` (a client, or a pipeline to batch it).

        NX, so a tombstone already there wins. An inactive user is not cached: a copy
        vouches for the tokens of its version.
        """
        if user.is_active:
            target.set(UserCache.key(user.id, user.token_version), encode(user), ex=TTL, nx=True)

    def invalidate(self, versions: set[tuple[uuid.UUID, int]]) -> None:
        """Drop the copies of these (user, token version) pairs on every instance, and tell
        every worker to forget its snapshot of these users."""
        users = {user_id for user_id, _ in versions}
        forget_here(users=users)
        if self.client is None or not versions:
            return
        try:
            pipeline = self.client.pipeline(transaction=False)
            for user_id, token_version in versions:
                pipeline.set(UserCache.key(user_id, token_version), TOMBSTONE, ex=TOMBSTONE_TTL)
            stage_announcement(pipeline, users=users)
            pipeline.execute()
        except RedisError as exc:
            logger.warning("user cache invalidation failed: %s", type(exc).__name__)


def _versions(user: User) -> set[tuple[uuid.UUID, int]]:
    """The copies a change to ``user`` makes stale: its version before and after."""
    history = inspect(user).attrs.token_version.history
    return {(user.id, version) for version in (*history.deleted, user.token_version)}


def _collect(session: OrmSession, _context: UOWTransaction, _instances: object) -> None:
    changed = {
        pair
        for obj in (*session.dirty, *session.deleted)
        if isinstance(obj, User) and obj.id
        for pair in _versions(obj)
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
    cached_columns()  # a column the cache cannot store fails at startup, not per request
    if not event.contains(OrmSession, "before_flush", _collect):
        event.listen(OrmSession, "before_flush", _collect)
        event.listen(OrmSession, "after_commit", _after_commit)
        event.listen(OrmSession, "after_soft_rollback", _after_rollback)
