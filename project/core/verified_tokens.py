"""A JWT manager that verifies each token's signature once per process, not per request."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from flask import Flask, current_app
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import CSRFError

from project.core.settings import current_settings

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


class CachingJWTManager(JWTManager):
    """flask-jwt-extended, minus re-verifying a token the process already verified.

    Decoding parses a token three times and checks its signature: a fifth of an
    authenticated request's CPU. A client sends one access token many times, so the
    claims of a verified token are kept (per app and worker, bounded by
    ``TOKEN_CACHE_SIZE``) until it expires. Only the signature check is skipped: expiry
    is checked on every use, and revocation is decided by the blocklist callback, which
    runs on every request either way.
    """

    def init_app(self, app: Flask, add_context_processor: bool = False) -> None:
        """Bind to ``app`` with a cache of its own (apps may hold different keys)."""
        super().init_app(app, add_context_processor)
        app.extensions[CACHE_KEY] = VerifiedTokenCache(current_settings(app).TOKEN_CACHE_SIZE)

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: str | None = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if csrf_value is not None and not csrf_value.isascii():
            # compare_digest() raises TypeError on non-ASCII text: answer as for a mismatch.
            raise CSRFError("CSRF double submit tokens do not match")
        if allow_expired:
            return dict(super()._decode_jwt_from_config(encoded_token, csrf_value, True))
        verified: VerifiedTokenCache = current_app.extensions[CACHE_KEY]
        claims = verified.get(encoded_token, csrf_value)
        if claims is None:
            claims = dict(super()._decode_jwt_from_config(encoded_token, csrf_value, False))
            verified.put(encoded_token, csrf_value, claims)
        return claims
