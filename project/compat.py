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

from flask import Flask, Response, current_app, g
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


# Flask-Limiter's name-mangled private hooks (gate_limiter_hooks).
INJECT_HEADERS = Limiter._Limiter__inject_headers  # type: ignore[attr-defined]
RELEASE_CONTEXT = Limiter._Limiter__release_context  # type: ignore[attr-defined]


def gate_limiter_hooks(app: Flask, limiter: Limiter, exempt: Callable[[], bool]) -> None:
    """Run Flask-Limiter's per-request hooks only for requests ``exempt`` does not exempt.

    Flask-Limiter 4.1: ``init_app`` registers the bound method
    ``Limiter._check_request_limit`` as a ``before_request`` hook,
    ``partial(Limiter._Limiter__inject_headers, limiter)`` as an ``after_request`` hook and
    the bound method ``Limiter._Limiter__release_context`` as a ``teardown_request`` hook.
    Its public ``request_filter`` is called inside the check only after the view's limits
    and exemption scopes are resolved, which costs a warm authenticated read (whose account
    limit is counted in the session check) as much CPU as that whole check; the other two
    hooks cost it another 5 % of its instructions. For an exempted request the after hook
    has nothing to do: it adds headers only with RATELIMIT_HEADERS_ENABLED, which Warden
    keeps off (it writes them itself, api/middleware.py), and deducts only for limits with
    ``deduct_when``, which Warden does not use; the teardown resets state that ends with
    the request. Each hook is wrapped where it stands, so it keeps its place.
    """
    if app.config.get("RATELIMIT_HEADERS_ENABLED"):
        raise RuntimeError("The gate would drop Flask-Limiter's headers.")
    befores, b = _hook_of(
        limiter,
        app.before_request_funcs,
        lambda hook: getattr(hook, "__func__", None) is Limiter._check_request_limit,
    )
    afters, a = _hook_of(
        limiter,
        app.after_request_funcs,
        lambda hook: getattr(hook, "func", None) is INJECT_HEADERS,
    )
    teardowns, t = _hook_of(
        limiter,
        app.teardown_request_funcs,
        lambda hook: getattr(hook, "__func__", None) is RELEASE_CONTEXT,
    )
    before, after, teardown = befores[b], afters[a], teardowns[t]

    @functools.wraps(before)
    def check_request_limit() -> None:
        g.limits_exempt = skipped = exempt()
        if not skipped:
            before()

    @functools.wraps(after)
    def inject_headers(response: Response) -> Response:
        return response if g.get("limits_exempt") else after(response)

    @functools.wraps(teardown)
    def release_context(error: BaseException | None = None) -> None:
        if not g.get("limits_exempt"):
            teardown(error)

    befores[b], afters[a], teardowns[t] = check_request_limit, inject_headers, release_context


def _hook_of(
    limiter: Limiter, hooks: dict[Any, list[Any]], matches: Callable[[Any], bool]
) -> tuple[list[Any], int]:
    """The app-wide hook list holding exactly one hook of ``limiter`` that ``matches``,
    and its index."""
    app_wide = hooks.get(None, [])
    found = [
        index
        for index, hook in enumerate(app_wide)
        if matches(hook)
        and limiter in (getattr(hook, "__self__", None), *getattr(hook, "args", ())[:1])
    ]
    if len(found) != 1:
        raise RuntimeError("Flask-Limiter's request hooks are not among the app's hooks.")
    return app_wide, found[0]


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
