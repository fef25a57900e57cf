"""The user account."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow, value_enum

if TYPE_CHECKING:
    from project.models.session import Session


class Role(enum.StrEnum):
    """What a user may do."""

    USER = "user"
    ADMIN = "admin"


class User(Base):
    """An account that can authenticate."""

    __tablename__ = "users"
    __table_args__ = (Index("ix_users_created_at_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254))
    # Byte order ("C") on PostgreSQL, as SQLite compares: the unique index then answers the
    # admin email-prefix filter (LIKE 'x%') as a range, already in email order.
    email_normalized: Mapped[str] = mapped_column(
        String(254).with_variant(String(254, collation="C"), "postgresql"), unique=True
    )
    password_hash: Mapped[str] = mapped_column(String(128))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        value_enum(Role, name="user_role", length=16), default=Role.USER
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    email_verified: Mapped[bool] = mapped_column(default=False)
    # Bumped whenever access tokens issued so far must stop working (role change, password).
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    sessions: Mapped[list[Session]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_admin(self) -> bool:
        """Whether the user holds the admin role."""
        return self.role is Role.ADMIN
