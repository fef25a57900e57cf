"""Brute-force defence for login: exponential backoff per (account, IP) and per account."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from project.core.networks import address_key
from project.core.settings import current_settings
from project.repositories.login_attempts import Attempts, AttemptStore, attempt_store

# Failure counters are forgotten after a day without failures.
WINDOW = 24 * 3600
# An address that logged in successfully is trusted for the account for 30 days.
TRUST_TTL = 30 * 24 * 3600


def backoff(failures: int, *, free: int, cap: int) -> int:
    """Seconds to wait after ``failures`` consecutive failures: 1, 2, 4 … past ``free``, capped."""
    if failures <= free:
        return 0
    return int(min(cap, 2 ** min(failures - free - 1, 32)))


@dataclass(frozen=True)
class LoginGuard:
    """Counters for one login attempt; unknown emails are counted exactly like known ones."""

    email_normalized: str
    ip: str | None
    store: AttemptStore

    @classmethod
    def for_attempt(cls, *, email_normalized: str, ip: str | None) -> LoginGuard:
        """Build the guard for an attempt on the current app's store."""
        return cls(email_normalized=email_normalized, ip=ip, store=attempt_store())

    @property
    def _account(self) -> str:
        return "warden:login:acct:" + hashlib.sha256(self.email_normalized.encode()).hexdigest()

    @property
    def _pair(self) -> str:
        return f"{self._account}:ip:{address_key(self.ip)}"

    @property
    def _trust(self) -> str:
        return f"{self._pair}:trusted"

    def retry_after(self) -> int:
        """Seconds until another attempt is allowed, 0 when it is allowed now."""
        locks = [self.store.get(self._pair).locked_until]
        # The owner's usual address skips the account-wide lock, so a third party spraying
        # the account from elsewhere cannot lock the owner out.
        if not self.store.is_marked(self._trust):
            locks.append(self.store.get(self._account).locked_until)
        remaining = max(locks) - time.time()
        return math.ceil(remaining) if remaining > 0 else 0

    def record_failure(self) -> None:
        """Count a failure against the pair and the account, locking when past the free tries."""
        settings = current_settings()
        limits = (
            (self._pair, settings.LOGIN_FREE_FAILURES_PER_IP, settings.LOGIN_BACKOFF_CAP_IP),
            (
                self._account,
                settings.LOGIN_FREE_FAILURES_PER_ACCOUNT,
                settings.LOGIN_BACKOFF_CAP_ACCOUNT,
            ),
        )
        now = time.time()
        for key, free, cap in limits:
            failures = self.store.add_failure(key, ttl=WINDOW)
            delay = backoff(failures, free=free, cap=cap)
            if delay:
                self.store.save(key, Attempts(failures, now + delay), ttl=WINDOW)

    def record_success(self) -> None:
        """Reset the counters and trust this address for the account."""
        self.store.delete(self._pair, self._account)
        self.store.mark(self._trust, ttl=TRUST_TTL)
