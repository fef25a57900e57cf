"""The check behind every request with an access token: may it be used now, and whose is it.

``check`` runs it in four steps:

1. the token's claims name a user, a session and the token version it was issued under;
2. Redis is asked, in one round trip, for the session's marker and the user's copy at that
   version; when both vouch for the token (the marker names the token's user, so a
   session's id under another ``sub`` is not vouched for) the same round trip counts the
   request against the account (a warm request asks the database nothing);
3. otherwise the database answers for the session and its user, and Redis is told so;
4. a token whose session ended, whose user is gone or inactive, or whose version predates
   the account's last security change is refused (TokenRevoked), counted nowhere.

The account's limit (RATELIMIT_ACCOUNT) is Flask-Limiter's sliding-window counter: a
window's count plus the previous window's, weighted by how much of it still overlaps the
last period, shared by every instance through Redis. A request is counted only if it fits
every window, and a refused one gets the wait until one would (RateLimited). Without Redis,
or with it down, the database answers every check and the account's requests are counted
in this process's memory, as Flask-Limiter does when its storage fails.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from project.core import errors, metrics
from project.core.settings import current_settings
from project.models import User
from project.models.types import utcnow
from project.repositories import SessionRepository, local_state
from project.repositories.local_state import Permits
from project.repositories.session_state import Counter, SessionStateCache, Tally
from project.repositories.user_cache import detached_copy

logger = logging.getLogger(__name__)

KEY_PREFIX = "warden-rl:account"
FALLBACK_KEY = "warden.account_limiter"
# The most per-account permits one worker leases at once (see session_state.LEASE_SHARE).
LEASE = 64
ENDED = "This session has ended."
VOIDED = "This token predates the account's last security change; refresh for a new one."


def check(claims: Mapping[str, Any], *, count: bool) -> User:
    """The active user behind a verified access token, or raise TokenRevoked.

    With ``count``, the request is counted against the account's rate limit
    (RateLimited when over it). The user returned may be a detached copy without its
    password hash: use cases that change a user load it themselves.
    """
    if claims.get("type") != "access":
        raise errors.TokenRevoked(ENDED)  # a refresh token is checked by its rotation
    user_id, session_id = claimed_ids(claims)
    version = claimed_version(claims)
    limits = windows() if count else []
    memory = local_state.current()
    if memory.trusted():
        user = memory.vouched_user(session_id, user_id, version)
        if user is not None:
            if limits:
                _spend_permit(memory.permits, session_id, user, limits)
            return user
    mark = memory.mark()
    # Counted in this round trip unless this worker holds a permit for the account.
    held = bool(limits) and memory.permits.held(user_id, _indices(limits))
    counters = [] if held else [window.counter(user_id) for window in limits]
    cache = SessionStateCache()
    seen = cache.read(session_id, user_id, version, counters, LEASE)
    if seen.revoked:
        raise errors.TokenRevoked(ENDED)
    if seen.user is not None:
        user = seen.user
    else:
        user = _from_database(cache, user_id=user_id, session_id=session_id)
    if not user.is_active:
        raise errors.TokenRevoked(ENDED)
    if user.token_version != version:
        raise errors.TokenRevoked(VOIDED)
    memory.remember(session_id, seen.user or detached_copy(user), mark)
    if limits:
        if counters and seen.user is not None:
            _enforce(user_id, limits, seen.tally, memory.permits)
        else:
            _spend_permit(memory.permits, session_id, user, limits)
    return user


def claimed_ids(claims: Mapping[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    """The user and session ids a verified token names; malformed ones name no live session."""
    user_id, session_id = claims.get("sub"), claims.get("sid")
    if not isinstance(user_id, str) or not isinstance(session_id, str):
        raise errors.TokenRevoked(ENDED)
    try:
        return uuid.UUID(user_id), uuid.UUID(session_id)
    except ValueError:
        raise errors.TokenRevoked(ENDED) from None


def claimed_version(claims: Mapping[str, Any]) -> int:
    """The token version an access token carries; anything but a JSON integer is refused."""
    version = claims.get("ver")
    if type(version) is not int:  # not a bool, float or numeric string either
        raise errors.TokenRevoked(ENDED)
    return version


def _from_database(cache: SessionStateCache, *, user_id: uuid.UUID, session_id: uuid.UUID) -> User:
    """The session's user as the database has it, once it shows the session live."""
    found = SessionRepository().get_with_user(session_id)
    if found is None or not found[0].is_active_at(utcnow()) or found[1].id != user_id:
        raise errors.TokenRevoked(ENDED)
    user = found[1]
    cache.remember_active_with_user(session_id, user)
    return user


@dataclass(frozen=True)
class Window:
    """One configured limit at one moment: which window it is and how far into it."""

    item: RateLimitItem
    index: int
    elapsed: float  # 0 to 1

    @property
    def length(self) -> int:
        """The window's length in seconds."""
        return self.item.get_expiry()

    def counter(self, user_id: uuid.UUID) -> Counter:
        """The Redis counter of ``user_id``'s requests in this window, capped by the limit."""
        base = f"{KEY_PREFIX}:{user_id}:{self.item.amount}/{self.length}"
        return Counter(
            current=f"{base}:{self.index}",
            previous=f"{base}:{self.index - 1}",
            cap=self.item.amount,
            weight=1 - self.elapsed,
            # Kept for two windows: the next window reads it as its previous one.
            ttl=2 * self.length,
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
    settings = current_settings()
    if not settings.RATELIMIT_ENABLED:
        return []
    now = time.time() if now is None else now
    found = []
    for item in _items(settings.RATELIMIT_ACCOUNT):
        index, into = divmod(now, item.get_expiry())
        found.append(Window(item, int(index), into / item.get_expiry()))
    return found


def _indices(limits: list[Window]) -> tuple[int, ...]:
    return tuple(window.index for window in limits)


def _spend_permit(
    permits: Permits, session_id: uuid.UUID, user: User, limits: list[Window]
) -> None:
    """Count a vouched-for request with a permit this worker holds, else lease from Redis."""
    if not permits.take(user.id, _indices(limits)):
        counters = [window.counter(user.id) for window in limits]
        tally = SessionStateCache().count(session_id, user, counters, LEASE)
        _enforce(user.id, limits, tally, permits)


def _enforce(
    user_id: uuid.UUID, limits: list[Window], tally: Tally | None, permits: Permits
) -> None:
    """Raise RateLimited if the request did not fit; without Redis's tally, count here.

    Permits granted beyond this request's one are kept for the next requests.
    """
    if tally is None:
        _count_in_memory(user_id, limits)
    elif not tally.added:
        raise _rate_limited(user_id, limits, tally.counts)
    else:
        permits.add(user_id, _indices(limits), tally.granted - 1)


def _count_in_memory(user_id: uuid.UUID, limits: list[Window]) -> None:
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
    raise _rate_limited(user_id, limits, counts)


def _rate_limited(
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
