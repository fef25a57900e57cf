"""A login session: the server-side record behind a refresh token family."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from project.models.user import User


class LogoutScope(enum.StrEnum):
    """Which sessions a logout ends."""

    LOCAL = "local"
    OTHERS = "others"
    GLOBAL = "global"


class Session(Base):
    """One login; every refresh token rotated from it shares its id."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    refresh_jti: Mapped[str] = mapped_column(String(64))
    # The token rotated away most recently, honoured for REFRESH_REUSE_INTERVAL seconds.
    previous_jti: Mapped[str | None] = mapped_column(String(64))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(45))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How the session was authenticated (RFC 8176 style: pwd, otp, recovery, webauthn, ...)
    # and when a factor was last proved for it; access tokens carry both.
    amr: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["pwd"])
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="sessions")

    def is_active_at(self, moment: datetime) -> bool:
        """Whether the session can still be used at ``moment``."""
        return self.revoked_at is None and self.expires_at > moment
