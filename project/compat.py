"""Every use of a library's private internals, each pinned by tests/test_compat.py.

Each entry names the library version and private name it relies on, and why no public
hook serves. An upgrade that changes one fails its test instead of misbehaving quietly.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from copy import deepcopy
from typing import Any

from flask import Flask, current_app
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import CSRFError
from flask_limiter import Limiter
from jwt import MissingRequiredClaimError

from project.core.settings import current_settings
from project.core.verified_tokens import CACHE_KEY, VerifiedTokenCache


def skip_caller_lookup() -> None:
    """Stop logging from walking the stack for each record's file, line and function.

    logging (CPython 3.11): ``logging._srcfile``. The logging HOWTO ("Optimization")
    names setting it to None as the way to skip ``findCaller``; unlike ``logThreads`` and
    ``logProcesses`` it has no public switch, and no Warden log line shows the caller.
    """
    logging._srcfile = None


def document_operation(view: Callable[..., Any], *, responses: Mapping[int, str]) -> None:
    """Add response references to a view's OpenAPI description, in place.

    flask-smorest 0.47: the ``_apidoc`` dict its decorators keep on a view. Its public
    ``Blueprint.doc`` and ``alt_response`` return a new wrapper; the auth decorators
    document the wrapper they return themselves, and ``Blueprint.route`` reads the doc
    of the view it registers, so the description is completed on that same function.
    """
    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    documented = apidoc.setdefault("response", {}).setdefault("responses", {})
    for status, name in responses.items():
        documented.setdefault(status, []).append(name)
    view._apidoc = apidoc  # type: ignore[attr-defined]


def check_limits_unless(app: Flask, limiter: Limiter, exempt: Callable[[], bool]) -> None:
    """Run Flask-Limiter's per-request check only for requests ``exempt`` does not exempt.

    Flask-Limiter 4.1: ``init_app`` registers the bound method
    ``Limiter._check_request_limit`` as a ``before_request`` hook. Its public
    ``request_filter`` is called inside that check only after the view's limits and
    exemption scopes are resolved, which costs a warm authenticated read (whose account
    limit is counted in the session check) as much CPU as that whole check. The hook is
    wrapped where it stands, so it keeps its place among the app's hooks.
    """
    hooks = app.before_request_funcs.setdefault(None, [])
    found = [
        index
        for index, hook in enumerate(hooks)
        if getattr(hook, "__self__", None) is limiter
        and getattr(hook, "__func__", None) is Limiter._check_request_limit
    ]
    if len(found) != 1:
        raise RuntimeError("Flask-Limiter's request check is not among the app's hooks.")
    index = found[0]
    hook = hooks[index]

    @functools.wraps(hook)
    def check_request_limit() -> None:
        if not exempt():
            hook()

    hooks[index] = check_request_limit


class CachingJWTManager(JWTManager):
    """flask-jwt-extended, minus re-verifying a token the process already verified.

    Decoding parses a token three times and checks its signature: a fifth of an
    authenticated request's CPU. A client sends one access token many times, so the
    claims of a verified token are kept (per app and worker, bounded by
    ``TOKEN_CACHE_SIZE``) until it expires. Only the signature check is skipped: expiry
    is checked on every use, and revocation is decided by the blocklist callback, which
    runs on every request either way. A token without a numeric ``exp`` is refused here,
    access and refresh alike: PyJWT checks ``exp`` only when present, and a token that
    never expires would outlive every rotation.

    flask-jwt-extended 4.7: ``JWTManager._decode_jwt_from_config(encoded_token,
    csrf_value=None, allow_expired=False)``, which ``verify_jwt_in_request`` and
    ``decode_token`` call. Its public loaders (``decode_key_loader``,
    ``token_verification_loader``) all run around a full decode, never instead of one.
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
        verified: VerifiedTokenCache = current_app.extensions[CACHE_KEY]
        claims = None if allow_expired else verified.get(encoded_token, csrf_value)
        if claims is None:
            claims = dict(super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired))
            # A numeric string passes PyJWT's own check; a bool is an int to Python.
            if type(claims.get("exp")) not in (int, float):
                raise MissingRequiredClaimError("exp")
            # A refresh token is good for one rotation: kept, it would only push out an
            # access token that is sent again and again.
            if not allow_expired and claims.get("type") != "refresh":
                verified.put(encoded_token, csrf_value, claims)
        return claims
