"""Rate limits per endpoint, read from the app's configuration at request time."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import current_app, request

from project.compat import document_operation
from project.core.security import HASHING_KEY, HashingSlots
from project.core.settings import current_settings
from project.core.verified_tokens import CACHE_KEY, VerifiedTokenCache
from project.extensions import limiter

# Set on views that check an access token (api/auth.py).
CHECKS_ACCESS_TOKEN = "warden_checks_access_token"
# Set on views with a per-IP limit of their own (below).
IP_LIMITED = "warden_ip_limited"
# Set on views that end sessions: a victim must be able to reach them even when someone
# holding a stolen token has used up the account's budget, so they stay per IP.
ENDS_SESSIONS = "warden_ends_sessions"


def _configured(name: str) -> Callable[[], str]:
    return lambda: str(getattr(current_settings(), name))


def limit(setting: str, *, hashes_passwords: bool = False) -> Callable[[Any], Any]:
    """Limit a view per client IP by the limit string in config ``setting``.

    A view that ``hashes_passwords`` also holds one of the worker's hashing slots while
    it runs, taken after the limit is checked.
    """
    decorate = limiter.limit(_configured(setting))

    def apply(view: Any) -> Any:
        limited = decorate(holding_hashing_slot(view) if hashes_passwords else view)
        setattr(limited, IP_LIMITED, True)
        if hashes_passwords:
            document_operation(limited, responses={503: "SERVICE_UNAVAILABLE"})
        return limited

    return apply


def holding_hashing_slot(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``view`` in a hashing slot, or answer 503 hashing_busy at once when none is free."""

    @functools.wraps(view)
    def hashing(*args: Any, **kwargs: Any) -> Any:
        slots: HashingSlots = current_app.extensions[HASHING_KEY]
        with slots.slot():
            return view(*args, **kwargs)

    return hashing


login_limit = limit("RATELIMIT_LOGIN", hashes_passwords=True)
register_limit = limit("RATELIMIT_REGISTER", hashes_passwords=True)
refresh_limit = limit("RATELIMIT_REFRESH")
password_limit = limit("RATELIMIT_PASSWORD", hashes_passwords=True)
email_limit = limit("RATELIMIT_EMAIL")
# A passkey sign-in hashes no password, but is a login all the same.
passkey_limit = limit("RATELIMIT_LOGIN")
# Second-factor codes are guessed per IP at the login rate (and per account, in the service).
code_limit = limit("RATELIMIT_LOGIN")


def ends_sessions(view: Any) -> Any:
    """Mark a view that ends sessions: limited per IP, never per account."""
    setattr(view, ENDS_SESSIONS, True)
    return view


def counts_per_account(view: object) -> bool:
    """Whether a request to ``view`` is counted per account (RATELIMIT_ACCOUNT), not per IP.

    Views that check an access token, have no per-IP limit of their own and do not end
    sessions.
    """
    return (
        getattr(view, CHECKS_ACCESS_TOKEN, False)
        and not getattr(view, IP_LIMITED, False)
        and not getattr(view, ENDS_SESSIONS, False)
    )


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request has one."""
    # From the environ: the scheme was made "Bearer" there (api/middleware.py).
    header: str = request.environ.get("HTTP_AUTHORIZATION", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else None


def counted_elsewhere() -> bool:
    """Whether Flask-Limiter's per-request check has nothing to count for this request.

    A view with a per-IP limit of its own is counted by that limit's decorator, and the
    default limit does not apply to it. A view that counts per account is counted by the
    access check, but only when the bearer token is an access token this worker has
    verified before and not seen refused since: any other token (new, forged, expired,
    revoked, a refresh token) is counted per IP, so a token cannot escape both limits.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    view = app.view_functions.get(request.endpoint or "")
    if getattr(view, IP_LIMITED, False):
        return True
    if not counts_per_account(view):
        return False
    token = bearer_token()
    verified: VerifiedTokenCache = app.extensions[CACHE_KEY]
    return token is not None and verified.is_verified_access(token)
