"""An account's identity at an external provider (OpenID Connect or GitHub)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow


class Identity(Base):
    """A provider's subject linked to a user: signing in there signs in here."""

    __tablename__ = "identities"
    __table_args__ = (
        # The provider's subject is stable and unique per provider; one account holds it.
        UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
        Index("ix_identities_user_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    # The address the provider gave at the last sign-in, for the user's list only.
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
