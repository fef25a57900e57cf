"""Custom marshmallow fields."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields


class TrimmedEmail(fields.Email):
    """An email address with surrounding white space removed before validation."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs)


class TrimmedString(fields.String):
    """A string with surrounding white space removed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        return result.strip() if isinstance(result, str) else result


class Cursor(fields.Field[tuple[datetime, uuid.UUID]]):
    """An opaque keyset cursor: base64url JSON of (created_at, id)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        created_at, entity_id = value
        raw = json.dumps([created_at.isoformat(), str(entity_id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[datetime, uuid.UUID]:
        try:
            padded = str(value) + "=" * (-len(str(value)) % 4)
            created_at, entity_id = json.loads(base64.urlsafe_b64decode(padded))
            moment = datetime.fromisoformat(created_at)
            if moment.tzinfo is None:
                raise ValueError("naive cursor time")
            return moment, uuid.UUID(entity_id)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ValidationError("Not a valid cursor.") from None
