"""A sign-in that proved a first factor and waits for a second."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow


class SignInChallenge(Base):
    """Short-lived and single-purpose: it can only be traded, once, for a session.

    Only the SHA-256 of the challenge is stored, like a one-time token's.
    """

    __tablename__ = "sign_in_challenges"
    __table_args__ = (Index("ix_sign_in_challenges_user_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    # The amr values proved so far, e.g. ["pwd"].
    methods: Mapped[list[str]] = mapped_column(JSON)
    # Codes tried on it so far; MAX_ATTEMPTS ends it.
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
