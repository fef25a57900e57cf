"""Password hashing with bcrypt, and how many hashes one process runs at once."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import bcrypt

from project.core import errors, metrics

# A slot frees within one hash's time (a fraction of a second).
RETRY_AFTER = "1"
# Where an app keeps its process's HashingSlots.
HASHING_KEY = "warden.hashing_slots"


def normalized(password: str) -> str:
    """The form of a password that is hashed, judged and compared: NFKC.

    NFKC makes the same password typed on different keyboards compare equal.
    """
    return unicodedata.normalize("NFKC", password)


def _prepare(password: str) -> bytes:
    """Turn any password into 44 bytes bcrypt can take whole.

    bcrypt reads only 72 bytes, so two long passwords sharing a prefix would collide.
    Hashing first with SHA-256 (base64, so no NUL byte) keeps every character significant.
    """
    return base64.b64encode(hashlib.sha256(normalized(password).encode("utf-8")).digest())


def same_password(first: str, second: str) -> bool:
    """Whether two passwords are one and the same once normalized as they are hashed."""
    return normalized(first) == normalized(second)


def hash_password(password: str, *, rounds: int) -> str:
    """Return a bcrypt hash of ``password`` at cost ``rounds``."""
    return bcrypt.hashpw(_prepare(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """Check ``password`` against a stored hash in constant time."""
    try:
        return bcrypt.checkpw(_prepare(password), password_hash.encode("ascii"))
    except ValueError:
        return False


# A stored hash no password matches: bcrypt refuses it as a salt, so the check fails.
UNUSABLE_PREFIX = "!"


def unusable_password() -> str:
    """A password hash for an account made by a provider or mail: nothing verifies it.

    Never an empty string, which would be a value some code might compare equal.
    """
    return UNUSABLE_PREFIX + secrets.token_urlsafe(32)


def has_usable_password(password_hash: str) -> bool:
    """Whether some password can match ``password_hash``."""
    return not password_hash.startswith(UNUSABLE_PREFIX)


def needs_rehash(password_hash: str, *, rounds: int) -> bool:
    """Whether a stored hash was made at a different cost than configured."""
    try:
        return int(password_hash.split("$")[2]) != rounds
    except (IndexError, ValueError):
        return True


@lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    return hash_password("not-a-real-password", rounds=rounds)


def burn_verify(password: str, *, rounds: int) -> None:
    """Spend one verification's work for an unknown account.

    Answering faster for unknown emails would let an attacker enumerate accounts by timing.
    """
    verify_password(password, _dummy_hash(rounds))


class HashingSlots:
    """At most ``size`` requests of this process hash passwords at once; none waits for one.

    bcrypt is slow by design: requests queued behind it would hold every worker thread,
    and probes and token reads would wait behind a flood of logins.
    """

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot while the block runs; raise HashingBusy at once when none is free."""
        if not self._free.acquire(blocking=False):
            metrics.HASHING_BUSY.inc()
            raise errors.HashingBusy(
                "The service is busy checking passwords; try again shortly.",
                headers={"Retry-After": RETRY_AFTER},
            )
        try:
            yield
        finally:
            self._free.release()
