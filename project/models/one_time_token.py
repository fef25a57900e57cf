"""Single-use tokens: mailed links (verification, reset, email change, sign-in) and the
sign-in code a provider's callback hands the frontend."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow, value_enum


class TokenPurpose(enum.StrEnum):
    """What a one-time token allows."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"
    # Handed to the frontend after a provider's callback, traded once for the token pair.
    SIGN_IN = "sign_in"
    # Mailed for passwordless sign-in: a link, and a short code kept in ``data``.
    EMAIL_SIGN_IN = "email_sign_in"


class OneTimeToken(Base):
    """Only the SHA-256 of the token is stored: a database leak reveals no usable token."""

    __tablename__ = "one_time_tokens"
    __table_args__ = (Index("ix_one_time_tokens_user_id_purpose", "user_id", "purpose"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[TokenPurpose] = mapped_column(
        value_enum(TokenPurpose, name="token_purpose", length=32)
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
