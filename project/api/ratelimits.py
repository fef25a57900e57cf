"""Rate limits per endpoint, read from the app's configuration at request time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request

from project.core.verified_tokens import CACHE_KEY, VerifiedTokenCache
from project.extensions import limiter

# Set on views that check an access token: their session check counts the request per
# account (services/account_limit.py).
ACCOUNT_LIMITED = "warden_account_limited"
# Set on views with a per-IP limit of their own (below).
IP_LIMITED = "warden_ip_limited"


def _configured(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def limit(setting: str) -> Callable[[Any], Any]:
    """Limit a view per client IP by the limit string in config ``setting``."""
    decorate = limiter.limit(_configured(setting))

    def apply(view: Any) -> Any:
        limited = decorate(view)
        setattr(limited, IP_LIMITED, True)
        return limited

    return apply


login_limit = limit("RATELIMIT_LOGIN")
register_limit = limit("RATELIMIT_REGISTER")
refresh_limit = limit("RATELIMIT_REFRESH")
password_limit = limit("RATELIMIT_PASSWORD")
email_limit = limit("RATELIMIT_EMAIL")


@limiter.request_filter
def counted_per_account_only() -> bool:
    """Whether Flask-Limiter skips this request: its session check counts it per account.

    So for a view that checks an access token and has no per-IP limit of its own, when the
    bearer token is one this worker has verified before. Any other token (new, forged,
    expired) is counted per IP by the default limit as well, so a made-up token cannot
    escape both limits.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, ACCOUNT_LIMITED, False) or getattr(view, IP_LIMITED, False):
        return False
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    verified: VerifiedTokenCache = current_app.extensions[CACHE_KEY]
    return verified.is_verified(header[len("Bearer ") :])
