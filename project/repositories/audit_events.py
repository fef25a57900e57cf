"""Queries on the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import TableClause, Text, Uuid, cast, delete, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from project.models import AuditEvent
from project.models.types import UTCDateTime
from project.repositories.base import BaseRepository

PrimaryKey = tuple[uuid.UUID, datetime]


@dataclass(frozen=True)
class AuditFilters:
    """Filters for listing events; None means no filter."""

    user_id: uuid.UUID | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


# The columns an account export shows before ``details``, in EventSchema's order.
EXPORTED = ("id", "occurred_at", "event_type", "actor_id", "ip", "user_agent")


class AuditEventRepository(BaseRepository[AuditEvent]):
    """Events newest first, in keyset pages."""

    model = AuditEvent

    def page(
        self,
        *,
        filters: AuditFilters,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
    ) -> list[AuditEvent]:
        """Return up to ``limit`` events ordered by (occurred_at, id) descending."""
        query = (
            select(AuditEvent)
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
        if filters.user_id is not None:
            query = query.where(AuditEvent.user_id == filters.user_id)
        if filters.event_type is not None:
            query = query.where(AuditEvent.event_type == filters.event_type)
        if filters.since is not None:
            query = query.where(AuditEvent.occurred_at >= filters.since)
        if filters.until is not None:
            query = query.where(AuditEvent.occurred_at < filters.until)
        if before is not None:
            occurred_at, event_id = before
            query = query.where(
                tuple_(AuditEvent.occurred_at, AuditEvent.id)
                < tuple_(literal(occurred_at, UTCDateTime), literal(event_id, Uuid))
            )
        return list(self.session.scalars(query))

    def stream_for_user(
        self, user_id: uuid.UUID, *, batch: int
    ) -> Iterator[Sequence[Sequence[Any]]]:
        """Every event about ``user_id``, newest first, ``batch`` rows at a time.

        Rows hold the columns an export shows, ``details`` as its stored JSON text
        (decoding it would cost more than reading the row), and come through a server-side
        cursor where the database has one, so memory stays bounded whatever the count.
        """
        columns = AuditEvent.__table__.c
        query = (
            select(*(columns[name] for name in EXPORTED), cast(columns.details, Text))
            .where(columns.user_id == user_id)
            .order_by(columns.occurred_at.desc(), columns.id.desc())
        )
        result = self.session.execute(query, execution_options={"yield_per": batch})
        yield from result.partitions()

    def add_or_count(self, values: dict[str, Any]) -> None:
        """Insert the event ``values`` describe, or add one to ``details.count`` of the row
        already holding its id.

        The insert skips on conflict and the count is raised under a row lock, so
        concurrent writers (other instances included) neither duplicate the row nor lose
        a count.
        """
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        inserted = self.session.execute(
            dialect.insert(AuditEvent)
            .values(**values, details={"count": 1})
            .on_conflict_do_nothing(index_elements=[AuditEvent.id, AuditEvent.occurred_at])
            .returning(AuditEvent.id)
        )
        if inserted.first() is not None:
            return
        key = {"id": values["id"], "occurred_at": values["occurred_at"]}
        event = self.session.get(AuditEvent, key, with_for_update=True, populate_existing=True)
        if event is not None:  # pruned in between: this one occurrence goes uncounted
            event.details = {**event.details, "count": int(event.details.get("count", 1)) + 1}
            self.session.flush()

    def older_than(
        self, cutoff: datetime, *, limit: int, table: TableClause | None = None
    ) -> list[PrimaryKey]:
        """Keys of the events before ``cutoff`` (in ``table``, a partition), oldest first."""
        source = _table(table)
        query = (
            select(source.c.id, source.c.occurred_at)
            .where(source.c.occurred_at < cutoff)
            .order_by(source.c.occurred_at, source.c.id)
            .limit(limit)
        )
        return [(row.id, row.occurred_at) for row in self.session.execute(query)]

    def delete_keys(self, keys: list[PrimaryKey], *, table: TableClause | None = None) -> int:
        """Delete the events with these keys; return how many went."""
        source = _table(table)
        result = self.session.execute(
            delete(source).where(tuple_(source.c.id, source.c.occurred_at).in_(keys))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _table(partition: TableClause | None) -> TableClause:
    """The table to work on: one partition, or the whole trail."""
    whole: TableClause = AuditEvent.__table__  # type: ignore[assignment]
    return partition if partition is not None else whole
