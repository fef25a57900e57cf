"""Second factors: authenticator-app (TOTP) secrets and recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow


class TotpFactor(Base):
    """An authenticator app; active once a code from it confirmed the enrolment."""

    __tablename__ = "totp_factors"
    __table_args__ = (Index("ix_totp_factors_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    # The base32 secret, encrypted with MFA_ENCRYPTION_KEYS (Fernet): a database leak alone
    # yields no working codes.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time step of the last accepted code: a code is accepted once (no replay).
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_active(self) -> bool:
        """Whether the factor passed its confirmation."""
        return self.confirmed_at is not None


class RecoveryCode(Base):
    """One single-use recovery code; only its SHA-256 (salted with the user id) is kept."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
