"""The claims of tokens this process verified, so each signature is checked once."""

from __future__ import annotations

import contextlib
import time
from typing import Any

CACHE_KEY = "warden.verified_tokens"


class VerifiedTokenCache:
    """Claims of tokens whose signature checked out, kept until the token expires."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._claims: dict[tuple[str, str | None], dict[str, Any]] = {}

    def get(self, token: str, csrf_value: str | None) -> dict[str, Any] | None:
        """The claims of a verified token that has not expired, else None."""
        claims = self._claims.get((token, csrf_value))
        if claims is None:
            return None
        if time.time() >= claims["exp"]:
            # Past its expiry the full decode runs again and answers token_expired.
            self._claims.pop((token, csrf_value), None)
            return None
        # A copy: callers may change the dict they get.
        return dict(claims)

    def is_verified_access(self, token: str) -> bool:
        """Whether a header token (no CSRF value) is an access token that verified here
        and has not expired."""
        claims = self._claims.get((token, None))
        return claims is not None and claims.get("type") == "access" and time.time() < claims["exp"]

    def forget(self, token: str) -> None:
        """Drop a header token (its session was found revoked)."""
        self._claims.pop((token, None), None)

    def put(self, token: str, csrf_value: str | None, claims: dict[str, Any]) -> None:
        """Remember a verified token's claims (only tokens with a numeric expiry)."""
        # PyJWT also accepts a numeric string; such a token is verified in full every time.
        if type(claims.get("exp")) not in (int, float) or self.size <= 0:
            return
        if len(self._claims) >= self.size:
            # Forget the oldest entry (dicts keep insertion order). Threaded workers may
            # race here; losing that race only means one entry too many for a moment.
            with contextlib.suppress(StopIteration, RuntimeError, KeyError):
                del self._claims[next(iter(self._claims))]
        self._claims[(token, csrf_value)] = dict(claims)

    def __len__(self) -> int:
        return len(self._claims)

    def __contains__(self, token: object) -> bool:
        return any(key[0] == token for key in self._claims)

    def clear(self) -> None:
        """Forget every token (new keys, tests)."""
        self._claims.clear()
