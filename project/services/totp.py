"""Authenticator apps: enrol (start, confirm), list, remove; and the recovery codes.

An enrolment is pending until a code from the app confirms it; only then is it a factor.
The secret is shown once, at the start, and kept encrypted (MFA_ENCRYPTION_KEYS). The
recovery codes are shown once, at confirmation or regeneration, and kept hashed.
Enrolling or removing a factor ends the user's other sessions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from project.core import errors, otp, security
from project.core.settings import current_settings
from project.extensions import db
from project.models import AuditEventType, RecoveryCode, TotpFactor, User
from project.models.types import utcnow
from project.repositories import UserRepository
from project.repositories.factors import RecoveryCodeRepository, TotpFactorRepository
from project.repositories.passkeys import PasskeyRepository
from project.services import assurance, audit, factors, notifications
from project.services.sessions import end_sessions, publish_revocations


@dataclass(frozen=True)
class Enrolment:
    """A pending authenticator app: what the user's app needs, shown once."""

    id: uuid.UUID
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class FactorInfo:
    """An authenticator app as its owner sees it (never its secret)."""

    id: uuid.UUID
    type: str
    label: str | None
    created_at: datetime
    confirmed_at: datetime | None
    active: bool


@dataclass(frozen=True)
class FactorList:
    """A user's factors and how many recovery codes are left."""

    factors: list[FactorInfo]
    recovery_codes_left: int


def _user(user_id: uuid.UUID) -> User:
    user = UserRepository().lock(user_id)
    if user is None:
        raise errors.TokenRevoked("This session has ended.")
    return user


def start_enrolment(
    *,
    user_id: uuid.UUID,
    password: str | None,
    session_id: uuid.UUID | None = None,
    label: str | None = None,
) -> Enrolment:
    """Create a pending factor with a fresh secret; an earlier pending one is replaced.

    The password is asked for: whoever adds a factor could lock the owner out with it. An
    account without one (made by a provider) signs in again instead (a recent sign-in).
    """
    found = UserRepository().get(user_id)
    if found is None:
        raise errors.TokenRevoked("This session has ended.")
    assurance.require_password_field(found, password, field="password")
    assurance.confirm_presence(found, password, session_id=session_id)
    user = _user(user_id)
    repository = TotpFactorRepository()
    if repository.active_for_user(user.id):
        raise errors.Conflict("An authenticator app is set up already; remove it first.")
    repository.delete_pending(user.id)
    secret = otp.new_secret()
    factor = repository.add(
        TotpFactor(user_id=user.id, secret_encrypted=factors.secret_box().seal(secret), label=label)
    )
    uri = otp.provisioning_uri(secret, account=user.email, issuer=current_settings().MFA_ISSUER)
    audit.record(
        AuditEventType.TOTP_ENROLMENT_STARTED,
        user_id=user.id,
        details={"factor_id": str(factor.id)},
    )
    db.session.commit()
    return Enrolment(id=factor.id, secret=secret, otpauth_uri=uri, qr_svg=otp.qr_svg(uri))


def confirm_enrolment(
    *, user_id: uuid.UUID, factor_id: uuid.UUID, code: str, session_id: uuid.UUID
) -> list[str]:
    """Activate a pending factor with a code from the app; return ten new recovery codes.

    The caller's session counts as having proved the factor now; every other session ends.
    """
    user = _user(user_id)
    repository = TotpFactorRepository()
    factor = repository.get(factor_id)
    if factor is None or factor.user_id != user.id:
        raise errors.NotFound("No authenticator app with this id.")
    if factor.is_active:
        raise errors.Conflict("This authenticator app is confirmed already.")
    step = otp.matching_step(factors.secret_box().open(factor.secret_encrypted), code.strip())
    if step is None:
        audit.record_now(
            AuditEventType.SECOND_FACTOR_FAILED, user_id=user.id, details={"enrolment": True}
        )
        raise errors.InvalidCode("The code is wrong; check the app's clock and try again.")
    factor.confirmed_at = utcnow()
    factor.last_used_step = step
    codes = _new_recovery_codes(user)
    revoked = end_sessions(user.id, keep=session_id)
    assurance.mark_proved(user, session_id=session_id, method="otp")
    audit.record(
        AuditEventType.TOTP_ENABLED,
        user_id=user.id,
        details={"factor_id": str(factor.id), "sessions_ended": len(revoked)},
    )
    db.session.commit()
    publish_revocations(revoked, cause="factor_enrolled")
    return codes


def _new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones (no commit); return them."""
    repository = RecoveryCodeRepository()
    repository.delete_for_user(user.id)
    codes = otp.new_recovery_codes()
    for code in codes:
        repository.session.add(
            RecoveryCode(user_id=user.id, code_hash=otp.recovery_code_hash(user.id, code))
        )
    repository.flush()
    audit.record(AuditEventType.RECOVERY_CODES_GENERATED, user_id=user.id)
    return codes


def regenerate_recovery_codes(*, user_id: uuid.UUID, session_id: uuid.UUID) -> list[str]:
    """Void the user's recovery codes and return ten new ones; needs a recent step-up."""
    user = _user(user_id)
    if not TotpFactorRepository().active_for_user(user.id):
        raise errors.Conflict("Set up an authenticator app first.")
    assurance.require_recent_factor(user, session_id=session_id)
    codes = _new_recovery_codes(user)
    db.session.commit()
    return codes


def list_factors(*, user_id: uuid.UUID) -> FactorList:
    """The user's authenticator apps, pending ones included, and recovery codes left."""
    items = [
        FactorInfo(
            id=factor.id,
            type="totp",
            label=factor.label,
            created_at=factor.created_at,
            confirmed_at=factor.confirmed_at,
            active=factor.is_active,
        )
        for factor in TotpFactorRepository().for_user(user_id)
    ]
    return FactorList(items, RecoveryCodeRepository().unused_count(user_id))


def remove(
    *,
    user_id: uuid.UUID,
    factor_id: uuid.UUID,
    session_id: uuid.UUID,
    password: str | None = None,
    code: str | None = None,
) -> None:
    """Remove an authenticator app; an active one needs a recent step-up and the password
    or a current code. Every other session ends."""
    user = UserRepository().get(user_id)
    factor = TotpFactorRepository().get(factor_id)
    if user is None or factor is None or factor.user_id != user_id:
        raise errors.NotFound("No authenticator app with this id.")
    if factor.is_active:
        assurance.require_recent_factor(user, session_id=session_id)
        _confirm_presence(user, password=password, code=code)
    user = _user(user_id)
    repository = TotpFactorRepository()
    repository.delete(factor)
    revoked: list[uuid.UUID] = []
    if factor.is_active:
        if factors.active_factors(user) == ["recovery"]:
            # Recovery codes back up a factor; with none left they are void too.
            RecoveryCodeRepository().delete_for_user(user.id)
        revoked = end_sessions(user.id, keep=session_id)
        audit.record(
            AuditEventType.TOTP_REMOVED,
            user_id=user.id,
            details={"factor_id": str(factor.id), "sessions_ended": len(revoked)},
        )
    db.session.commit()
    publish_revocations(revoked, cause="factor_removed")


def _confirm_presence(user: User, *, password: str | None, code: str | None) -> None:
    """The password or a current code, whichever the caller sent (the schema wants one)."""
    if password is None and code is None:
        raise errors.ValidationFailed(
            "Send the password or a current code.",
            errors={"password": ["Send the password or a current code."]},
        )
    if password is not None:
        if not security.verify_password(password, user.password_hash):
            raise errors.InvalidCredentials("The password is incorrect.")
        return
    if code is None or factors.check_code(user, code) is None:
        audit.record_now(
            AuditEventType.SECOND_FACTOR_FAILED, user_id=user.id, details={"removal": True}
        )
        raise errors.InvalidCode("The code is wrong or was used already.")


def admin_remove_all(*, user_id: uuid.UUID) -> None:
    """An admin removes every second factor of a user; the user's sessions end, and a mail
    tells the user."""
    user = UserRepository().lock(user_id)
    if user is None:
        raise errors.NotFound("No user with this id.")
    removed = TotpFactorRepository().delete_for_user(user.id)
    RecoveryCodeRepository().delete_for_user(user.id)
    passkeys = PasskeyRepository().delete_for_user(user.id)
    revoked = end_sessions(user.id)
    audit.record(
        AuditEventType.FACTORS_REMOVED_BY_ADMIN,
        user_id=user.id,
        details={"totp_factors": removed, "passkeys": passkeys, "sessions_ended": len(revoked)},
    )
    db.session.commit()
    publish_revocations(revoked, cause="factors_removed")
    notifications.factors_removed(to=user.email)


RESEAL_BATCH = 500


def reseal_secrets() -> int:
    """Encrypt every secret again under the first MFA_ENCRYPTION_KEYS key; return how many.

    Run it after putting a new key first; once it is done, the old keys can go.
    """
    repository = TotpFactorRepository()
    box = factors.secret_box()
    done = 0
    after: uuid.UUID | None = None
    while batch := repository.batch_after(after, limit=RESEAL_BATCH):
        for factor in batch:
            factor.secret_encrypted = box.reseal(factor.secret_encrypted)
        db.session.commit()  # one batch per transaction: a long run holds no long lock
        done += len(batch)
        after = batch[-1].id
    return done
