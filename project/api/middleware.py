"""Per-request hooks: request ids, the access log line, and security headers."""

from __future__ import annotations

import logging
import math
import random
import re
import time
from functools import partial
from typing import Any

from flask import Flask, Request, Response, g, request
from flask.sessions import SessionInterface, SessionMixin
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from project.core import context, errors, metrics, tasks
from project.core.settings import current_settings
from project.extensions import limiter
from project.services.client import clean_ip, clean_user_agent

logger = logging.getLogger("warden.request")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
BEARER_SCHEME = re.compile(r"(^\s*|,\s*)bearer(?=\s|,|$)", re.IGNORECASE)
DOCS_PATHS = ("/api/v1/openapi.json", "/api/v1/docs", "/api/v1/redoc")
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def prepare_request() -> None:
    """Start the request's context, then look at its headers and body (one hook: Flask's
    per-hook dispatch costs more than most of these steps)."""
    # Headers are read from the WSGI environ: Werkzeug's Headers.get raises and catches
    # an exception for each header a request lacks.
    environ = request.environ
    start_request(environ)
    normalize_auth_scheme(environ)
    refuse_encoded_body(environ)
    read_streamed_body(environ)


def start_request(environ: dict[str, Any]) -> None:
    """Adopt a well-formed client X-Request-ID or make one, and start the clock."""
    supplied = environ.get("HTTP_X_REQUEST_ID", "")
    # An id names a request and guards nothing: no system call for its randomness.
    request_id = supplied if REQUEST_ID.fullmatch(supplied) else f"{random.getrandbits(128):032x}"
    # The object behind the proxy, once: each read through Werkzeug's proxy looks the
    # object up again, as its LocalProxy documentation notes for repeated access.
    state = g._get_current_object()
    state.request_id = request_id
    state.started = time.perf_counter()
    state.pending_tasks = tasks.begin_request()
    context.start(
        request_id=request_id,
        ip=clean_ip(environ.get("REMOTE_ADDR")),
        user_agent=clean_user_agent(environ.get("HTTP_USER_AGENT")),
    )


def normalize_auth_scheme(environ: dict[str, Any]) -> None:
    """Accept the Bearer scheme in any case, as HTTP allows (flask-jwt-extended wants one)."""
    value = environ.get("HTTP_AUTHORIZATION")
    if value and not value.startswith("Bearer"):
        environ["HTTP_AUTHORIZATION"] = BEARER_SCHEME.sub(r"\1Bearer", value)


def refuse_encoded_body(environ: dict[str, Any]) -> None:
    """Refuse a compressed body: Warden would read the compressed bytes as they are."""
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in ("", "identity"):
        raise errors.UnsupportedMediaType("Send the body without Content-Encoding.")


def read_streamed_body(environ: dict[str, Any]) -> None:
    """Read a chunked body now: a broken one is 400, one past the limit 413.

    A chunked body is parsed by the server as the app reads it, so a malformed chunk raises
    the server's own exception out of whatever reads first (a 500), and Werkzeug stops a
    stream at MAX_CONTENT_LENGTH without saying so (the truncated JSON then read as
    invalid). A body with a Content-Length is checked by Werkzeug before it is read.
    """
    if (
        "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        or request.content_length is not None
        or "wsgi.input_terminated" not in environ
    ):
        return  # no body, or one Werkzeug already bounds by its Content-Length
    try:
        body = request.get_data(cache=True)
        limit = request.max_content_length
        if limit is not None and len(body) >= limit and environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    except (errors.AppError, HTTPException):
        raise
    except Exception as exc:  # the server's chunked parser, whichever server it is
        logger.info("unreadable request body: %s", type(exc).__name__)
        raise errors.BadRequest("The request body could not be read.") from None


def finish_request(response: Response) -> Response:
    """Echo the request id and write one access log line."""
    served: Request = request._get_current_object()  # type: ignore[attr-defined]
    state = g._get_current_object()
    path, method, settings = served.path, served.method, current_settings()
    headers = response.headers
    headers["X-Request-ID"] = state.get("request_id", "")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if path.startswith("/api/v1/") and not path.startswith(DOCS_PATHS):
        # Bodies carry tokens and personal data: no browser or proxy may keep a copy.
        headers["Cache-Control"] = "no-store"
    if settings.CORS_ORIGINS and path.startswith("/api/"):
        # The CORS headers depend on the Origin: a shared cache must key on it, whether
        # or not this answer carries them (flask-cors adds it only for some configurations).
        response.vary.add("Origin")
    if state.get("rate_limited"):
        add_rate_limit_headers(response)
    pending = state.get("pending_tasks")
    if pending:
        # Deferred work (mail without Redis) runs once the client has its response.
        response.call_on_close(partial(tasks.run_all, pending))
    if settings.HSTS:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    rule = served.url_rule
    route = rule.rule if rule else "<unmatched>"
    elapsed = time.perf_counter() - state.get("started", time.perf_counter())
    # Any token is a method to a client: only known ones become label values.
    label = method if method in METRIC_METHODS else "OTHER"
    status = response.status_code
    metrics.count_request(route, label, status, elapsed)
    logger.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )
    return response


def add_rate_limit_headers(response: Response) -> None:
    """On a rate_limited 429, describe the limit that was hit and say when to retry.

    Only then: reading a window's state costs a Redis round trip on every request.
    """
    current = limiter.current_limit
    # A login_throttled 429 is not a rate limit: the last limit checked was not breached.
    if current is None:
        return
    try:
        # Read from the limiter's storage now, after the view: Redis may have failed since.
        remaining, reset_at = current.remaining, current.reset_at
    except RedisError as exc:
        logger.warning("rate limit headers unavailable: %s", type(exc).__name__)
        return
    response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(int(reset_at))
    if "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(max(1, math.ceil(reset_at - time.time())))


def clear_context(_error: BaseException | None) -> None:
    """Forget the request's context once it ends."""
    tasks.end_request()
    context.clear()


class NoCookieSession(SessionInterface):
    """Warden keeps no Flask cookie session: skip reading and signing one per request."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin:
        """A null session, which refuses writes."""
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Nothing to save."""


def register_request_hooks(app: Flask) -> None:
    """Install the hooks on ``app``."""
    app.session_interface = NoCookieSession()
    app.before_request(prepare_request)
    app.after_request(finish_request)
    app.teardown_request(clear_context)
