"""Encryption of secrets at rest (TOTP seeds), with key rotation (Fernet, MultiFernet)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "SecretBox"]


def _fernet(secret: str) -> Fernet:
    # Any 32+ byte secret (what `openssl rand -hex 32` or Heroku's generator gives) becomes
    # a Fernet key; the key material is its SHA-256.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


class SecretBox:
    """Encrypts with the first key; decrypts with any, so keys can be rotated."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = MultiFernet([_fernet(secret) for secret in secrets])

    def seal(self, plaintext: str) -> str:
        """Encrypt and authenticate ``plaintext``."""
        return self._keys.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        """Decrypt; raise InvalidToken when no key opens it or it was altered."""
        return self._keys.decrypt(sealed.encode()).decode()

    def reseal(self, sealed: str) -> str:
        """The same secret under the first key (for rotating keys)."""
        return self._keys.rotate(sealed.encode()).decode()
