"""Which second factors a user holds, and checking a code against them.

A code is six digits from an authenticator app (TOTP) or a recovery code. Every check is
charged to the account before it runs, like a password guess (project.services.throttle):
after five wrong codes in a row the account waits 1, 2, 4 … seconds before each next one,
up to LOGIN_BACKOFF_CAP_ACCOUNT, whichever challenge or session the codes come from.
"""

from __future__ import annotations

import hashlib
import math
import uuid

from project.core import errors, otp
from project.core.secret_box import SecretBox
from project.core.settings import current_settings
from project.models import AuditEventType, User
from project.models.types import utcnow
from project.repositories.factors import (
    FactorQueries,
    RecoveryCodeRepository,
    TotpFactorRepository,
)
from project.repositories.login_attempts import Limit, attempt_store
from project.services import audit

# The amr values that prove a second factor; a passkey alone counts as two.
SECOND_FACTORS = frozenset({"otp", "recovery", "webauthn"})
# The attempt store locks once a counter passes ``free``: the sixth guess waits.
FREE_FAILURES = 4
WINDOW = 24 * 3600


def active_factors(user: User) -> list[str]:
    """The kinds of second factor the user can answer a challenge with (e.g. totp)."""
    return FactorQueries().kinds(user.id)


def proves_second_factor(methods: list[str]) -> bool:
    """Whether a sign-in's methods include a second factor."""
    return not SECOND_FACTORS.isdisjoint(methods)


def secret_box() -> SecretBox:
    """The encryption of TOTP secrets, keyed by MFA_ENCRYPTION_KEYS."""
    return SecretBox(current_settings().MFA_ENCRYPTION_KEYS)


def _throttle_key(user_id: uuid.UUID) -> str:
    return "warden:otp:acct:" + hashlib.sha256(str(user_id).encode()).hexdigest()


def _reserve(user: User) -> None:
    """Count a guess before checking it; refuse while the account waits."""
    limit = Limit(
        _throttle_key(user.id), FREE_FAILURES, current_settings().LOGIN_BACKOFF_CAP_ACCOUNT
    )
    wait = attempt_store().reserve([limit], ttl=WINDOW)
    if wait > 0:
        retry_after = math.ceil(wait)
        audit.record_now(AuditEventType.SECOND_FACTOR_THROTTLED, user_id=user.id)
        raise errors.SecondFactorThrottled(
            "Too many wrong codes; try again later.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


def check_code(user: User, code: str) -> str | None:
    """The amr value ``code`` proves for ``user`` (``otp`` or ``recovery``), or None.

    A TOTP code is accepted once per time step, and a recovery code once: both are spent
    by conditional UPDATEs that the caller's commit keeps. Throttled per account.
    """
    _reserve(user)
    method = _check_totp(user, code) or _use_recovery_code(user, code)
    if method is not None:
        attempt_store().delete(_throttle_key(user.id))
    return method


def _check_totp(user: User, code: str) -> str | None:
    digits = "".join(code.split())
    if len(digits) != otp.DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    repository = TotpFactorRepository()
    box = secret_box()
    for factor in repository.active_for_user(user.id):
        step = otp.matching_step(box.open(factor.secret_encrypted), digits)
        if step is not None and repository.use_step(factor.id, step):
            return "otp"
    return None


def _use_recovery_code(user: User, code: str) -> str | None:
    normalized = otp.normalize_recovery_code(code)
    if len(normalized) != otp.RECOVERY_LENGTH:
        return None
    used = RecoveryCodeRepository().use(
        user.id, otp.recovery_code_hash(user.id, normalized), now=utcnow()
    )
    if not used:
        return None
    audit.record(
        AuditEventType.RECOVERY_CODE_USED,
        user_id=user.id,
        actor_id=user.id,
        details={"left": RecoveryCodeRepository().unused_count(user.id)},
    )
    return "recovery"
