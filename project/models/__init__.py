"""ORM models; importing this package registers every table on the metadata."""

from project.models.audit_event import AuditEvent, AuditEventType
from project.models.one_time_token import OneTimeToken, TokenPurpose
from project.models.passkey import CeremonyKind, Passkey, WebAuthnChallenge
from project.models.session import LogoutScope, Session
from project.models.user import Role, User

__all__ = [
    "AuditEvent",
    "AuditEventType",
    "CeremonyKind",
    "LogoutScope",
    "OneTimeToken",
    "Passkey",
    "Role",
    "Session",
    "TokenPurpose",
    "User",
    "WebAuthnChallenge",
]
