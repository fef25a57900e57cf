"""Schemas for the audit trail and the account export."""

from collections.abc import Iterator
from typing import Any

import orjson
from marshmallow import Schema, fields, validate

from project.models import AuditEventType
from project.schemas.fields import Cursor, UTCDateTimeField
from project.schemas.passkeys import PasskeySchema
from project.schemas.users import UserSchema


class EventSchema(Schema):
    """A security event as its subject sees it."""

    id = fields.UUID(required=True)
    occurred_at = fields.DateTime(format="iso", required=True)
    event_type = fields.String(
        required=True,
        metadata={
            "enum": [event.value for event in AuditEventType],
            "example": AuditEventType.LOGIN_SUCCEEDED.value,
        },
    )
    actor_id = fields.UUID(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    user_agent = fields.String(required=True, allow_none=True)
    details = fields.Dict(required=True)


class AdminEventSchema(EventSchema):
    """A security event as an admin sees it."""

    user_id = fields.UUID(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)


class EventQuerySchema(Schema):
    """Paging through one's own events."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = Cursor(metadata={"description": "next_cursor from the previous page"})


class AdminEventQuerySchema(EventQuerySchema):
    """Filters for the admin audit search."""

    user_id = fields.UUID()
    type = fields.Enum(AuditEventType, by_value=fields.String)
    since = UTCDateTimeField(format="iso", metadata={"description": "inclusive, ISO 8601"})
    until = UTCDateTimeField(format="iso", metadata={"description": "exclusive, ISO 8601"})


class EventPageSchema(Schema):
    """One page of events, newest first."""

    items = fields.Nested(EventSchema, many=True, required=True)
    next_cursor = Cursor(attribute="next_key", required=True, allow_none=True)


class AdminEventPageSchema(Schema):
    """One page of events for admins, newest first."""

    items = fields.Nested(AdminEventSchema, many=True, required=True)
    next_cursor = Cursor(attribute="next_key", required=True, allow_none=True)


class ExportSessionSchema(Schema):
    """A session in the export, ended ones included."""

    id = fields.UUID(required=True)
    created_at = fields.DateTime(format="iso", required=True)
    last_used_at = fields.DateTime(format="iso", required=True)
    expires_at = fields.DateTime(format="iso", required=True)
    revoked_at = fields.DateTime(format="iso", required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    user_agent = fields.String(required=True, allow_none=True)


class AccountExportSchema(Schema):
    """Everything Warden holds about the caller."""

    profile = fields.Nested(UserSchema, required=True)
    sessions = fields.Nested(ExportSessionSchema, many=True, required=True)
    passkeys = fields.Nested(PasskeySchema, many=True, required=True)
    security_events = fields.Nested(EventSchema, many=True, required=True)


def export_json(export: Any) -> Iterator[bytes]:
    """The account export as AccountExportSchema describes it, in chunks of JSON.

    The events are written batch by batch as the database yields them: each row holds
    EventSchema's fields in order, ``details`` as stored JSON text. marshmallow's dump
    would take most of the worker's time limit for a million events, and orjson writes
    UUIDs and datetimes in the same ISO form.
    """
    head = orjson.dumps(AccountExportSchema(exclude=("security_events",)).dump(export))
    yield head[:-1] + b',"security_events":['
    names = list(EventSchema().fields)
    separator = b""
    for rows in export.security_events:
        events = [
            dict(zip(names, (*row[:-1], orjson.Fragment(row[-1])), strict=True)) for row in rows
        ]
        yield separator + orjson.dumps(events)[1:-1]
        separator = b","
    yield b"]}"
