"""The per-account rate limit of requests that carry an access token.

Anonymous requests are limited per client IP by Flask-Limiter (RATELIMIT_DEFAULT). A
request with an access token is limited per account (RATELIMIT_ACCOUNT), and counted in
the session check's own Redis round trip rather than in one more. The algorithm is the
sliding-window counter Flask-Limiter is configured with: a window's count, plus the
previous window's weighted by how much of it still overlaps the last period.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from project.core import errors
from project.repositories.session_state import Counter

KEY_PREFIX = "warden-rl:account"
FALLBACK_KEY = "warden.account_limiter"


@dataclass(frozen=True)
class Window:
    """One configured limit at one moment: which window it is and how far into it."""

    item: RateLimitItem
    index: int
    elapsed: float

    def counter(self, user_id: uuid.UUID) -> Counter:
        """The Redis keys counting ``user_id``'s requests in this window and the last."""
        base = f"{KEY_PREFIX}:{user_id}:{self.item.amount}/{self.item.get_expiry()}"
        # Kept for two windows: the next window reads it as its previous one.
        return Counter(f"{base}:{self.index}", f"{base}:{self.index - 1}", 2 * self.length)

    @property
    def length(self) -> int:
        """The window's length in seconds."""
        return self.item.get_expiry()

    def retry_after(self, current: int, previous: int) -> int | None:
        """Seconds until one more request fits, or None if this one (counted) fits now."""
        amount, overlap = self.item.amount, 1 - self.elapsed
        if previous * overlap + current <= amount:
            return None
        if current + 1 <= amount:
            # Wait until the previous window's weight has shrunk enough.
            needed = 1 - (amount - current - 1) / previous
            wait = (needed - self.elapsed) * self.length
        else:
            # Wait for the next window, where this one's count is the decaying previous.
            needed = max(0.0, 1 - (amount - 1) / current)
            wait = (overlap + needed) * self.length
        # Rounded to whole seconds, forgiving float noise (18.000000000000004 is 18).
        return max(1, math.ceil(wait - 1e-9))


@lru_cache(maxsize=16)
def _items(setting: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(setting))


def windows(now: float | None = None) -> list[Window]:
    """The account limit's windows now; none when rate limiting is off."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return []
    now = time.time() if now is None else now
    found = []
    for item in _items(str(current_app.config["RATELIMIT_ACCOUNT"])):
        index, into = divmod(now, item.get_expiry())
        found.append(Window(item, int(index), into / item.get_expiry()))
    return found


def check(user_id: uuid.UUID, limits: list[Window], counts: list[tuple[int, int]] | None) -> None:
    """Raise RateLimited if the request just counted goes over a window's limit.

    ``counts`` are the (current, previous) counts Redis returned, or None when Redis did
    not count; then this worker counts alone, as Flask-Limiter does when Redis fails.
    """
    if counts is None:
        _check_in_memory(user_id, limits)
        return
    for window, (current, previous) in zip(limits, counts, strict=True):
        wait = window.retry_after(current, previous)
        if wait is not None:
            raise _refusal(window.item, time.time() + wait, wait)


def _check_in_memory(user_id: uuid.UUID, limits: list[Window]) -> None:
    limiter = current_app.extensions.get(FALLBACK_KEY)
    if limiter is None:
        limiter = current_app.extensions[FALLBACK_KEY] = SlidingWindowCounterRateLimiter(
            MemoryStorage()
        )
    for window in limits:
        if not limiter.hit(window.item, KEY_PREFIX, str(user_id)):
            reset_at = limiter.get_window_stats(window.item, KEY_PREFIX, str(user_id)).reset_time
            raise _refusal(window.item, reset_at, max(1, math.ceil(reset_at - time.time())))


def _refusal(item: RateLimitItem, reset_at: float, wait: int) -> errors.AppError:
    return errors.RateLimited(
        f"Too many requests for this account: {item}.",
        headers={
            "Retry-After": str(wait),
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        },
    )
