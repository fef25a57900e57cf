"""Single-use tokens: 32 random bytes to the user, only their SHA-256 in the database."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any

from project.core import errors
from project.core.settings import current_settings
from project.models import OneTimeToken, TokenPurpose
from project.models.types import utcnow
from project.repositories.one_time_tokens import OneTimeTokenRepository


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(
    user_id: uuid.UUID, purpose: TokenPurpose, *, ttl: int, data: dict[str, Any] | None = None
) -> str:
    """Create a token (no commit) and return the raw value to mail.

    Earlier links of a reset or verification stay valid up to LINKS_KEPT, so a stranger
    who asks for a new link cannot void the one its owner holds. An email change keeps
    only the newest: only the account holder asks for one, and a new one names a new
    address.
    """
    repository = OneTimeTokenRepository()
    now = utcnow()
    keep = 0 if purpose is TokenPurpose.CHANGE_EMAIL else current_settings().LINKS_KEPT - 1
    repository.invalidate_all_but_newest(user_id, purpose, keep=keep, now=now)
    raw = secrets.token_urlsafe(32)
    repository.add(
        OneTimeToken(
            token_hash=_digest(raw),
            purpose=purpose,
            user_id=user_id,
            data=data or {},
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return raw


def find(raw: str, *purposes: TokenPurpose) -> OneTimeToken:
    """Return a usable token; wrong, used and expired ones fail alike (400 invalid_token)."""
    token = OneTimeTokenRepository().find_usable(_digest(raw), purposes=purposes, now=utcnow())
    if token is None:
        raise errors.InvalidOneTimeToken("This link is invalid or has expired.")
    return token


def consume(token: OneTimeToken) -> None:
    """Use a token up (no commit); a concurrent second use fails."""
    if not OneTimeTokenRepository().consume(token.id, now=utcnow()):
        raise errors.InvalidOneTimeToken("This link is invalid or has expired.")


def void_all(user_id: uuid.UUID, *purposes: TokenPurpose) -> None:
    """Void every unused token of a user, or of these purposes (password or email changed)."""
    OneTimeTokenRepository().invalidate_for_user(user_id, now=utcnow(), purposes=purposes or None)
