"""The audit trail: one row per security-relevant action, in the action's transaction.

Events an attacker can cause at will without any work on Warden's side (a throttled login
costs no password check) collapse into one row per account and window, whose
``details.count`` says how many there were, so no one can flood a victim's trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from project.core import context
from project.extensions import db
from project.models import AuditEvent, AuditEventType
from project.models.types import utcnow
from project.repositories.audit_events import AuditEventRepository, AuditFilters

EventKey = tuple[datetime, uuid.UUID]

# Event types counted in one row per (user, window of this many seconds).
COLLAPSED: dict[AuditEventType, int] = {AuditEventType.LOGIN_THROTTLED: 60}
EXPORT_BATCH = 1000
_WINDOW_IDS = uuid.UUID("5b0f3c1e-2a57-4d5e-9f61-7c0b8a8e4d21")


@dataclass(frozen=True)
class EventPage:
    """One page of events, newest first, and the key to continue (None at the end)."""

    items: list[AuditEvent]
    next_key: EventKey | None


def record(
    event_type: AuditEventType,
    *,
    user_id: uuid.UUID | None,
    actor_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an event to the current transaction; the caller's commit writes it.

    The actor defaults to the authenticated caller. ``details`` must never hold secrets;
    a collapsed type's details are its count.
    """
    current = context.current()
    if actor_id is None and current.user_id:
        actor_id = uuid.UUID(current.user_id)
    kind = AuditEventType(event_type)
    fields: dict[str, Any] = {
        "event_type": kind.value,
        "user_id": user_id,
        "actor_id": actor_id,
        "ip": current.ip,
        "user_agent": current.user_agent,
        "request_id": current.request_id,
    }
    window = COLLAPSED.get(kind)
    if window is None:
        AuditEventRepository().stage(AuditEvent(**fields, details=details or {}))
        return
    # The id and time name the window (together they are the key), so every instance
    # counts into the same row; the row's time is the window's start.
    start = int(utcnow().timestamp()) // window * window
    event_id = uuid.uuid5(_WINDOW_IDS, f"{kind.value}|{user_id}|{start}")
    occurred_at = datetime.fromtimestamp(start, UTC)
    AuditEventRepository().add_or_count({**fields, "id": event_id, "occurred_at": occurred_at})


def record_now(event_type: AuditEventType, **fields: Any) -> None:
    """Record an event that has no other change to ride with, and commit it."""
    record(event_type, **fields)
    db.session.commit()


def list_events(*, filters: AuditFilters, limit: int, before: EventKey | None) -> EventPage:
    """Return one page of events, newest first."""
    rows = AuditEventRepository().page(filters=filters, limit=limit + 1, before=before)
    items = rows[:limit]
    next_key = (items[-1].occurred_at, items[-1].id) if len(rows) > limit else None
    return EventPage(items=items, next_key=next_key)


def search(
    *,
    limit: int,
    before: EventKey | None = None,
    user_id: uuid.UUID | None = None,
    event_type: AuditEventType | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EventPage:
    """Admin search over the whole trail."""
    filters = AuditFilters(user_id=user_id, event_type=event_type, since=since, until=until)
    return list_events(filters=filters, limit=limit, before=before)


def stream_events_for(user_id: uuid.UUID) -> Iterator[Sequence[Sequence[Any]]]:
    """Every event about a user, newest first, in batches (for the account export)."""
    return AuditEventRepository().stream_for_user(user_id, batch=EXPORT_BATCH)
