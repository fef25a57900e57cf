"""The mail budget: how many links of one kind an address receives (MAIL_BUDGET).

Past it, a request gets the answer it always gets and no mail goes out, so whoever knows
an address can neither flood its mailbox nor learn that its budget is spent. Mails are
counted per normalized address and kind in a moving window (exact: never more than the
budget in any window), in the rate limits' storage: Redis, shared by every instance, or
this process's memory without Redis or while it fails. Redis holds the address's SHA-256,
not the address.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from project.core.settings import current_settings
from project.models import AuditEventType, TokenPurpose
from project.services import audit

logger = logging.getLogger(__name__)

KEY_PREFIX = "warden-mail"
EXTENSION_KEY = "warden.mail_budget"


@dataclass(frozen=True)
class Counters:
    """The shared counters and the process's own, used while the shared ones fail."""

    shared: MovingWindowRateLimiter
    local: MovingWindowRateLimiter


def _counters() -> Counters:
    found: Counters | None = current_app.extensions.get(EXTENSION_KEY)
    if found is None:
        config = current_app.config
        storage = storage_from_string(
            config["RATELIMIT_STORAGE_URI"],
            wrap_exceptions=True,
            **config["RATELIMIT_STORAGE_OPTIONS"],
        )
        found = Counters(
            shared=MovingWindowRateLimiter(storage),
            local=MovingWindowRateLimiter(MemoryStorage()),
        )
        current_app.extensions[EXTENSION_KEY] = found
    return found


def _hit(items: list[RateLimitItem], *identifiers: str) -> bool:
    """Count one against every window; False as soon as one is full."""
    counters = _counters()
    try:
        return all(counters.shared.hit(item, KEY_PREFIX, *identifiers) for item in items)
    except StorageError as exc:
        logger.warning(
            "mail budget storage unavailable, counting in memory: %s",
            type(exc.storage_error).__name__,
        )
        return all(counters.local.hit(item, KEY_PREFIX, *identifiers) for item in items)


def _items() -> list[RateLimitItem]:
    return parse_many(current_settings().MAIL_BUDGET)


def _identity(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def count(*, address: str, purpose: TokenPurpose) -> None:
    """Count a mail of ``purpose`` to ``address`` that goes out whatever the budget."""
    _hit(_items(), purpose.value, _identity(address))


def allows(*, address: str, purpose: TokenPurpose, user_id: uuid.UUID) -> bool:
    """Count one mail of ``purpose`` to ``address`` (a normalized key); False past the budget.

    A refusal is audited (no commit) once per window at most: a flood of requests must not
    flood the audit trail instead.
    """
    items = _items()
    identity = _identity(address)
    if _hit(items, purpose.value, identity):
        return True
    longest = max(items, key=lambda item: item.get_expiry())
    once_per_window = type(longest)(1, longest.multiples)
    if _hit([once_per_window], "suppressed", purpose.value, identity):
        audit.record(
            AuditEventType.MAIL_SUPPRESSED, user_id=user_id, details={"purpose": purpose.value}
        )
    return False
