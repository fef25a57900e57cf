"""Custom marshmallow fields."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from project.core import emails

# The column's size (users.email, users.email_normalized), an address's longest.
MAX_EMAIL_LENGTH = emails.MAX_LENGTH


class TrimmedEmail(fields.Email):
    """An address to look an account up by, with surrounding white space removed.

    Checked for form only: a row migration 0005 left as it was may hold an address
    email-validator refuses, and its owner still logs in with it.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            # Compared lower-cased, and lower() can lengthen text ("İ" becomes two).
            if len(value.lower()) > MAX_EMAIL_LENGTH:
                raise ValidationError(f"Longer than {MAX_EMAIL_LENGTH} characters.")
        return super()._deserialize(value, attr, data, **kwargs)


class NewEmail(fields.String):
    """An address being claimed (registration, email change), loaded in its normalized form."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"format": "email", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return emails.parse(text).email
        except emails.InvalidEmailError as exc:
            raise ValidationError(str(exc)) from None


class TrimmedString(fields.String):
    """A string with surrounding white space removed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        return result.strip() if isinstance(result, str) else result


def _encode(parts: list[str]) -> str:
    raw = json.dumps(parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(value: Any) -> Any:
    padded = str(value) + "=" * (-len(str(value)) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def storable_text(value: str) -> bool:
    """Whether the database can hold this string: no NUL, no lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _time_key(parts: Any) -> tuple[datetime, uuid.UUID]:
    created_at, entity_id = parts
    if not isinstance(created_at, str) or not isinstance(entity_id, str):
        raise TypeError("cursor parts must be strings")
    moment = datetime.fromisoformat(created_at)
    if moment.tzinfo is None:
        raise ValueError("naive cursor time")
    # Stored in UTC: a time that has no UTC equivalent (year 1 with an offset) is invalid.
    return moment.astimezone(UTC), uuid.UUID(entity_id)


CURSOR_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,  # JSON nested past Python's recursion limit
    binascii.Error,
    UnicodeDecodeError,
)


class UTCDateTimeField(fields.AwareDateTime):
    """An ISO 8601 time with an offset, converted to UTC (as it is stored)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of range once converted to UTC.") from None


def _email_key(email: object) -> str:
    # The database compares it with the column: storable text, no longer than an email.
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not storable_text(email):
        raise ValueError("email cursor without a usable email")
    return email


class Cursor(fields.Field[tuple[datetime, uuid.UUID] | str]):
    """An opaque keyset cursor: base64url JSON of (created_at, id).

    With ``emails=True`` it may also be the last email of a list in email order
    (``["email", address]``); without, such a cursor is invalid.
    """

    def __init__(self, *, emails: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emails = emails

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return _encode(["email", value])
        created_at, entity_id = value
        return _encode([created_at.isoformat(), str(entity_id)])

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[datetime, uuid.UUID] | str:
        try:
            parts = _decode(value)
            if self.emails and isinstance(parts, list) and len(parts) == 2 and parts[0] == "email":
                return _email_key(parts[1])
            return _time_key(parts)
        except CURSOR_ERRORS:
            raise ValidationError("Not a valid cursor.") from None
