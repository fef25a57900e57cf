"""The per-account rate limit of requests that carry an access token.

Anonymous requests are limited per client IP by Flask-Limiter (RATELIMIT_DEFAULT). A
request with an access token to a view without a per-IP limit of its own is limited per
account (RATELIMIT_ACCOUNT) instead, and counted in the session check's own Redis round
trip rather than in one more. The algorithm is Flask-Limiter's sliding-window counter: a
window's count plus the previous window's, weighted by how much of it still overlaps the
last period; a request is counted only if it fits every window.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from project.core import errors, metrics
from project.core.settings import current_settings
from project.repositories.session_state import Counted, Counter

logger = logging.getLogger(__name__)

KEY_PREFIX = "warden-rl:account"
FALLBACK_KEY = "warden.account_limiter"


@dataclass(frozen=True)
class Window:
    """One configured limit at one moment: which window it is and how far into it."""

    item: RateLimitItem
    index: int
    elapsed: float

    @property
    def length(self) -> int:
        """The window's length in seconds."""
        return self.item.get_expiry()

    def counter(self, user_id: uuid.UUID) -> Counter:
        """What Redis needs to count ``user_id``'s request in this window."""
        base = f"{KEY_PREFIX}:{user_id}:{self.item.amount}/{self.length}"
        return Counter(
            current=f"{base}:{self.index}",
            previous=f"{base}:{self.index - 1}",
            # Kept for two windows: the next window reads it as its previous one.
            ttl=2 * self.length,
            amount=self.item.amount,
            elapsed=self.elapsed,
        )

    def retry_after(self, current: int, previous: int) -> int | None:
        """Seconds until one more request fits, None if it fits now.

        ``current`` and ``previous`` are the windows' counts without that request.
        """
        amount, overlap = self.item.amount, 1 - self.elapsed
        if previous * overlap + current + 1 <= amount:
            return None
        if current + 1 <= amount:
            # Wait until the previous window's weight has shrunk enough.
            needed = 1 - (amount - current - 1) / previous
            wait = (needed - self.elapsed) * self.length
        else:
            # Wait for the next window, where this one's count is the decaying previous.
            needed = max(0.0, 1 - (amount - 1) / current)
            wait = (overlap + needed) * self.length
        # Whole seconds, forgiving float noise (18.000000000000004 is 18).
        return max(1, math.ceil(wait - 1e-9))


@lru_cache(maxsize=16)
def _items(setting: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(setting))


def windows(now: float | None = None) -> list[Window]:
    """The account limit's windows now; none when rate limiting is off."""
    if not current_settings().RATELIMIT_ENABLED:
        return []
    now = time.time() if now is None else now
    found = []
    for item in _items(current_settings().RATELIMIT_ACCOUNT):
        index, into = divmod(now, item.get_expiry())
        found.append(Window(item, int(index), into / item.get_expiry()))
    return found


def check(user_id: uuid.UUID, limits: list[Window], counted: Counted | None) -> None:
    """Raise RateLimited if the request did not fit the account's limits.

    ``counted`` is what Redis found, or None when Redis did not count; then this worker
    counts alone, as Flask-Limiter does when Redis fails.
    """
    if counted is None:
        _check_in_memory(user_id, limits)
        return
    if counted.fits:
        return
    raise _refusal(user_id, limits, counted.counts)


def _check_in_memory(user_id: uuid.UUID, limits: list[Window]) -> None:
    limiter = current_app.extensions.get(FALLBACK_KEY)
    if limiter is None:
        limiter = current_app.extensions[FALLBACK_KEY] = SlidingWindowCounterRateLimiter(
            MemoryStorage()
        )
    if all(limiter.test(window.item, KEY_PREFIX, str(user_id)) for window in limits):
        for window in limits:
            limiter.hit(window.item, KEY_PREFIX, str(user_id))
        return
    # limits' own reset_time is the end of the current window, not when a request fits
    # again, so its counts go through the same wait math as Redis's.
    storage = cast(MemoryStorage, limiter.storage)
    counts = []
    for window in limits:
        previous, _, current, _ = storage.get_sliding_window(
            window.item.key_for(KEY_PREFIX, str(user_id)), window.length
        )
        counts.append((current, previous))
    raise _refusal(user_id, limits, counts)


def _refusal(
    user_id: uuid.UUID, limits: list[Window], counts: Sequence[tuple[int, int]]
) -> errors.AppError:
    """The 429 for the window with the longest wait, given each window's counts."""
    waits = [
        (wait, window.item)
        for window, (current, previous) in zip(limits, counts, strict=True)
        if (wait := window.retry_after(current, previous)) is not None
    ]
    # The count's verdict stands; with no window over (float rounding), wait a second.
    wait, item = max(waits, key=lambda pair: pair[0]) if waits else (1, limits[0].item)
    reset_at = time.time() + wait
    metrics.RATE_LIMITED.inc()
    logger.warning("account rate limited", extra={"account_id": str(user_id), "limit": str(item)})
    return errors.RateLimited(
        f"Too many requests for this account: {item}.",
        headers={
            "Retry-After": str(wait),
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        },
    )
