"""Queries on the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Uuid, delete, literal, select, tuple_

from project.models import AuditEvent
from project.models.types import UTCDateTime
from project.repositories.base import BaseRepository


@dataclass(frozen=True)
class AuditFilters:
    """Filters for listing events; None means no filter."""

    user_id: uuid.UUID | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


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

    def delete_older_than(self, moment: datetime) -> int:
        """Delete events that occurred before ``moment``; return how many."""
        result = self.session.execute(delete(AuditEvent).where(AuditEvent.occurred_at < moment))
        return int(result.rowcount)  # type: ignore[attr-defined]
