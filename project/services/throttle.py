"""Brute-force defence for login, after OWASP's device cookies.

A device (browser or client) that signed in before holds a signed device token bound to the
account; its failures lock only that device. Every other attempt is charged to its (account,
IP) pair and to the account's untrusted pool, whose lock a third party can cause but never
lifts: only a device token, a mailed unlock token or a password reset gets past it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from enum import Enum

from itsdangerous import BadSignature, URLSafeTimedSerializer

from project.core.networks import address_key
from project.core.settings import current_settings
from project.repositories.login_attempts import AttemptStore, Limit, attempt_store, backoff

__all__ = ["LoginGuard", "Standing", "backoff", "device_token_for", "forget_failures"]

# Failure counters are forgotten after a day without failures.
WINDOW = 24 * 3600
DEVICE_SALT = "warden.login.device"
UNLOCK_SALT = "warden.login.unlock"


class Standing(Enum):
    """How far an attempt is trusted before its password is checked."""

    UNTRUSTED = "untrusted"
    UNLOCKED = "unlocked"  # holds a mailed unlock token for the account
    DEVICE = "device"  # holds a device token for the account


def _account_key(email_normalized: str) -> str:
    return "warden:login:acct:" + hashlib.sha256(email_normalized.encode()).hexdigest()


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_settings().SECRET_KEY, salt=salt)


def _issue(salt: str, account: str) -> str:
    return _serializer(salt).dumps({"a": account, "n": secrets.token_urlsafe(12)})


def _nonce(token: str | None, salt: str, account: str, max_age: int) -> str | None:
    """The nonce of a valid token of this account, else None (forged, expired or another's)."""
    if not token:
        return None
    try:
        claims = _serializer(salt).loads(token, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(claims, dict) or claims.get("a") != account:
        return None
    nonce = claims.get("n")
    return nonce if isinstance(nonce, str) else None


def forget_failures(email_normalized: str) -> None:
    """Lift the account's untrusted lock (its password was just reset)."""
    account = _account_key(email_normalized)
    attempt_store().delete(account, f"{account}:unlock-mailed")


def device_token_for(email_normalized: str) -> str:
    """A device token for the account (its sign-in finished after a second factor)."""
    return _issue(DEVICE_SALT, _account_key(email_normalized))


@dataclass(frozen=True)
class LoginGuard:
    """Counters for one login attempt; unknown emails are counted exactly like known ones."""

    account: str
    ip: str | None
    device: str | None
    standing: Standing
    store: AttemptStore

    @classmethod
    def for_attempt(
        cls,
        *,
        email_normalized: str,
        ip: str | None,
        device_token: str | None = None,
        unlock_token: str | None = None,
    ) -> LoginGuard:
        """Build the guard for an attempt, trusting only tokens Warden signed for this account."""
        settings = current_settings()
        account = _account_key(email_normalized)
        device = _nonce(device_token, DEVICE_SALT, account, settings.LOGIN_DEVICE_TTL)
        if device is not None:
            standing = Standing.DEVICE
        elif _nonce(unlock_token, UNLOCK_SALT, account, settings.LOGIN_UNLOCK_TTL):
            standing = Standing.UNLOCKED
        else:
            standing = Standing.UNTRUSTED
        return cls(account, ip, device, standing, attempt_store())

    @property
    def _pool(self) -> str:
        return self.account

    @property
    def _own(self) -> str:
        """The counter of this attempt's source: its device, else its (account, IP) pair."""
        if self.device is not None:
            return f"{self.account}:dev:{self.device}"
        return f"{self.account}:ip:{address_key(self.ip)}"

    def _limits(self) -> list[Limit]:
        settings = current_settings()
        limits = [
            Limit(self._own, settings.LOGIN_FREE_FAILURES_PER_IP, settings.LOGIN_BACKOFF_CAP_IP)
        ]
        if self.standing is Standing.UNTRUSTED:
            limits.append(
                Limit(
                    self._pool,
                    settings.LOGIN_FREE_FAILURES_PER_ACCOUNT,
                    settings.LOGIN_BACKOFF_CAP_ACCOUNT,
                )
            )
        return limits

    def reserve(self) -> int:
        """Seconds until an attempt is allowed; 0 means this one is allowed and counted."""
        remaining = self.store.reserve(self._limits(), ttl=WINDOW)
        return math.ceil(remaining) if remaining > 0 else 0

    def should_mail_unlock(self) -> bool:
        """Whether a refused untrusted attempt mails the owner a link (one per unlock lifetime)."""
        return self.standing is Standing.UNTRUSTED and self.store.mark_once(
            f"{self.account}:unlock-mailed", ttl=current_settings().LOGIN_UNLOCK_TTL
        )

    def unlock_token(self) -> str:
        """A token that lets the account's owner past the untrusted lock, for the mail."""
        return _issue(UNLOCK_SALT, self.account)

    def record_success(self) -> str:
        """Clear this source's own counter and return a device token for the account.

        The untrusted pool is only given back the failure this attempt reserved: a success
        never resets it, so it hands a third party no fresh failures.
        """
        untrusted = self.standing is Standing.UNTRUSTED
        self.store.settle(self._own, self._pool if untrusted else None)
        return _issue(DEVICE_SALT, self.account)
