"""Passkeys (WebAuthn credentials) and the challenges of their ceremonies."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow, value_enum

# WebAuthn caps credential ids at 1023 bytes.
MAX_CREDENTIAL_ID = 1023


class Passkey(Base):
    """A public key credential a user registered; only public material is stored."""

    __tablename__ = "passkeys"
    __table_args__ = (Index("ix_passkeys_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(MAX_CREDENTIAL_ID), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The authenticator's signature counter, a 32-bit unsigned number.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(100))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(default=False)
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CeremonyKind(enum.StrEnum):
    """Which WebAuthn ceremony a challenge belongs to."""

    REGISTRATION = "registration"
    AUTHENTICATION = "authentication"


class WebAuthnChallenge(Base):
    """A ceremony's challenge, kept server-side until it is answered once or expires."""

    __tablename__ = "webauthn_challenges"
    __table_args__ = (Index("ix_webauthn_challenges_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[CeremonyKind] = mapped_column(
        value_enum(CeremonyKind, name="webauthn_ceremony", length=16)
    )
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    # The registering user; for a sign-in, the user of a second-factor challenge, if any.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
