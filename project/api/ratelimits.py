"""Rate limits per endpoint, read from the app's configuration at request time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app

from project.extensions import limiter


def _configured(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def limit(setting: str) -> Callable[[Any], Any]:
    """Limit a view per client IP by the limit string in config ``setting``."""
    return limiter.limit(_configured(setting))


login_limit = limit("RATELIMIT_LOGIN")
register_limit = limit("RATELIMIT_REGISTER")
refresh_limit = limit("RATELIMIT_REFRESH")
password_limit = limit("RATELIMIT_PASSWORD")
email_limit = limit("RATELIMIT_EMAIL")
