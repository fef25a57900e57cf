"""The security audit trail."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, Index, String, Uuid, event
from sqlalchemy.orm import Mapped, mapped_column

from project.extensions import Base
from project.models.types import UTCDateTime, utcnow


class AuditEventType(enum.StrEnum):
    """The kinds of security event the trail records; the value is what is stored."""

    USER_REGISTERED = "user.registered"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGIN_THROTTLED = "login.throttled"
    SESSION_REVOKED = "session.revoked"
    LOGOUT = "logout"
    TOKEN_REUSE_DETECTED = "token.reuse_detected"
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"
    PASSWORD_RESET = "password.reset"
    EMAIL_VERIFICATION_SENT = "email.verification_sent"
    EMAIL_VERIFIED = "email.verified"
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"
    MAIL_SUPPRESSED = "mail.suppressed"
    USER_UPDATED = "user.updated"
    ROLE_CHANGED = "role.changed"
    USER_DEACTIVATED = "user.deactivated"
    USER_DELETED = "user.deleted"
    PASSKEY_REGISTERED = "passkey.registered"
    PASSKEY_RENAMED = "passkey.renamed"
    PASSKEY_REMOVED = "passkey.removed"
    PASSKEY_FAILED = "passkey.failed"
    PASSKEY_CLONE_SUSPECTED = "passkey.clone_suspected"
    IDENTITY_LINKED = "identity.linked"
    IDENTITY_UNLINKED = "identity.unlinked"
    IDENTITY_REFUSED = "identity.refused"
    EMAIL_SIGNIN_SENT = "email_signin.sent"
    SECOND_FACTOR_REQUIRED = "login.second_factor_required"
    SECOND_FACTOR_FAILED = "login.second_factor_failed"
    SECOND_FACTOR_THROTTLED = "login.second_factor_throttled"
    STEP_UP = "session.step_up"
    TOTP_ENROLMENT_STARTED = "totp.enrolment_started"
    TOTP_ENABLED = "totp.enabled"
    TOTP_REMOVED = "totp.removed"
    RECOVERY_CODES_GENERATED = "recovery_codes.generated"
    RECOVERY_CODE_USED = "recovery_codes.used"
    FACTORS_REMOVED_BY_ADMIN = "factors.removed_by_admin"


class AuditEvent(Base):
    """Who did what to whom, when and from where.

    No foreign keys on purpose: the trail outlives the accounts it mentions. On PostgreSQL
    the table is partitioned by month of ``occurred_at`` (retention drops whole months), so
    the primary key includes it; SQLite keeps one plain table with the same key.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_id_occurred_at", "user_id", "occurred_at", "id"),
        Index("ix_audit_events_event_type_occurred_at", "event_type", "occurred_at"),
        Index("ix_audit_events_occurred_at_id", "occurred_at", "id"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, default=utcnow)
    event_type: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Partitions are named audit_events_YYYY_MM; rows no month covers go to the default one,
# so an insert never fails for want of a partition.
PARTITION_PREFIX = "audit_events_"
DEFAULT_PARTITION = "audit_events_default"

event.listen(
    AuditEvent.__table__,
    "after_create",
    DDL(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF audit_events DEFAULT").execute_if(  # type: ignore[no-untyped-call]
        dialect="postgresql"
    ),
)


def is_partition(table_name: str) -> bool:
    """Whether ``table_name`` is one of the audit table's partitions (not a model's table)."""
    return table_name.startswith(PARTITION_PREFIX)
