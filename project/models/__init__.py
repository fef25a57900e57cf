"""ORM models; importing this package registers every table on the metadata."""

from project.models.audit_event import AuditEvent, AuditEventType
from project.models.factor import RecoveryCode, TotpFactor
from project.models.identity import Identity
from project.models.one_time_token import OneTimeToken, TokenPurpose
from project.models.passkey import CeremonyKind, Passkey, WebAuthnChallenge
from project.models.session import LogoutScope, Session
from project.models.sign_in_challenge import SignInChallenge
from project.models.user import Role, User

__all__ = [
    "AuditEvent",
    "AuditEventType",
    "CeremonyKind",
    "Identity",
    "LogoutScope",
    "OneTimeToken",
    "Passkey",
    "RecoveryCode",
    "Role",
    "Session",
    "SignInChallenge",
    "TokenPurpose",
    "TotpFactor",
    "User",
    "WebAuthnChallenge",
]
