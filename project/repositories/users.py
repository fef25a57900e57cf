"""Queries on users."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import NamedTuple

import psycopg
from sqlalchemy import Connection, Select, Uuid, bindparam, func, insert, select, text, tuple_
from sqlalchemy.exc import IntegrityError

from project.models import Role, User
from project.models.types import UTCDateTime
from project.repositories.base import BaseRepository

# The advisory lock key of changes to the set of active admins: "WARDEN" in ASCII.
ADMIN_CHANGES_LOCK = 0x5741_5244_454E
# Built once, as sessions.py's rotation: every login runs both, and building a statement
# costs more CPU than executing it.
_CREDENTIALS = select(User.id, User.password_hash).where(
    User.email_normalized == bindparam("email_normalized")
)
_LOCK = (
    select(User)
    .where(User.id == bindparam("user_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


class Credentials(NamedTuple):
    """What a password check reads of a user before it locks the row."""

    user_id: uuid.UUID
    password_hash: str


@dataclass(frozen=True)
class UserFilters:
    """Admin list filters; None means no filter."""

    role: Role | None = None
    is_active: bool | None = None
    email_prefix: str | None = None


def _chunks(rows: Iterable[dict[str, object]], size: int) -> Iterator[list[dict[str, object]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


COPY_COLUMNS = (
    "id",
    "email",
    "email_normalized",
    "password_hash",
    "full_name",
    "role",
    "is_active",
    "email_verified",
    "token_version",
    "created_at",
    "updated_at",
)


class UserRepository(BaseRepository[User]):
    """Users by id, by email, and in stable keyset pages."""

    model = User

    def get_by_email(self, email_normalized: str) -> User | None:
        """Return the user with this normalized email, or None."""
        return self.session.scalars(
            select(User).where(User.email_normalized == email_normalized)
        ).one_or_none()

    def credentials(self, email_normalized: str) -> Credentials | None:
        """The id and password hash of the user with this normalized email, or None."""
        row = self.session.execute(
            _CREDENTIALS, {"email_normalized": email_normalized}
        ).one_or_none()
        return None if row is None else Credentials(row.id, row.password_hash)

    def page(
        self,
        *,
        filters: UserFilters,
        limit: int,
        after: tuple[datetime, uuid.UUID] | str | None,
    ) -> list[User]:
        """Return up to ``limit`` users after the cursor.

        Filtered by email prefix, in email order, and ``after`` is the last email seen;
        otherwise in creation order, and ``after`` is the last (created_at, id) seen.
        Either way the order is an index's, so a page costs the same at any depth and size.
        """
        by_email = bool(filters.email_prefix)
        params: dict[str, object] = {"limit": limit}
        if filters.role is not None:
            params["role"] = filters.role
        if filters.is_active is not None:
            params["is_active"] = filters.is_active
        if filters.email_prefix:
            params["prefix"] = _escape_like(filters.email_prefix) + "%"
        if by_email and isinstance(after, str):
            params["after_email"] = after
        elif not by_email and isinstance(after, tuple):
            params["after_created_at"], params["after_id"] = after
        query = _page_query(
            role="role" in params,
            is_active="is_active" in params,
            by_email=by_email,
            after="after_email" in params or "after_id" in params,
        )
        return list(self.session.scalars(query, params))

    def bulk_insert(self, rows: Iterable[dict[str, object]], *, batch: int) -> int:
        """Insert many users fast: COPY on PostgreSQL, batched INSERTs elsewhere."""
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            return self._copy(connection, rows)
        count = 0
        for chunk in _chunks(rows, batch):
            self.session.execute(insert(User), chunk)
            count += len(chunk)
        return count

    @staticmethod
    def _copy(connection: Connection, rows: Iterable[dict[str, object]]) -> int:
        columns = list(COPY_COLUMNS)
        raw = connection.connection.dbapi_connection
        assert raw is not None
        count = 0
        statement = f"COPY users ({', '.join(columns)}) FROM STDIN"
        # A million rows take longer than the request-sized DB_STATEMENT_TIMEOUT_MS.
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row([row[column] for column in columns])
                    count += 1
        except psycopg.IntegrityError as exc:
            # The driver's own error, raw as COPY is: callers see SQLAlchemy's, as for INSERT.
            raise IntegrityError(statement, None, exc) from exc
        return count

    def lock(self, user_id: uuid.UUID) -> User | None:
        """Read the user's row afresh and lock it until commit; None if it is gone.

        Use cases that change a user take this lock before any token or session row of
        theirs, so they run one after another per user, in one lock order (no deadlocks),
        and decide on the row as it is now, not as an earlier read saw it.
        """
        return self.session.scalars(_LOCK, {"user_id": user_id}).one_or_none()

    def lock_admin_changes(self) -> int:
        """Take the lock for changes that may remove an admin; return the active admins.

        One lock for all of them (a transaction-scoped advisory lock on PostgreSQL), taken
        before any user row: concurrent demotions, deactivations and deletions then run one
        after another, each counting the admins the previous one left. SQLite writes one
        transaction at a time and has no such lock.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(select(func.pg_advisory_xact_lock(ADMIN_CHANGES_LOCK)))
        query = select(func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
        return int(self.session.scalar(query) or 0)


def _escape_like(value: str) -> str:
    """``value`` as a literal prefix of a LIKE pattern escaped with ``/``."""
    # As startswith(autoescape=True) escapes, which needs the value when the statement is
    # built; here the statement is built once and the value bound later.
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


@functools.cache
def _page_query(*, role: bool, is_active: bool, by_email: bool, after: bool) -> Select[User]:
    """The admin list's statement for one combination of filters, built once.

    Its values are bound at execution, so a page costs no statement building.
    """
    query = select(User).limit(bindparam("limit"))
    if role:
        query = query.where(User.role == bindparam("role"))
    if is_active:
        query = query.where(User.is_active == bindparam("is_active"))
    if by_email:
        query = query.where(User.email_normalized.like(bindparam("prefix"), escape="/"))
        if after:
            query = query.where(User.email_normalized > bindparam("after_email"))
        return query.order_by(User.email_normalized)
    if after:
        # A row comparison lets PostgreSQL seek straight to the cursor in the index.
        query = query.where(
            tuple_(User.created_at, User.id)
            > tuple_(
                bindparam("after_created_at", type_=UTCDateTime()),
                bindparam("after_id", type_=Uuid()),
            )
        )
    return query.order_by(User.created_at, User.id)
