"""A probe: GET /api/v1/users/me answered by a WSGI function in front of Flask.

What answering outside Flask's request machinery is worth. The same work as
Warden's route, and the same shared checks: the token's signature verified earlier by
flask-jwt-extended (the worker's verified-token cache), the session check's one Redis
round trip with the per-account count, the same schema, access log line, metrics and
headers. What it leaves out is the guide's fixed shape: no Flask request, no blueprint,
no flask-smorest, no flask-jwt-extended on the hot path. Only a bearer access token this
worker verified before takes the short way; anything else goes to Warden as usual. Used as
a checkout's wsgi.py, like nothing_shared.py.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from project import create_app
from project.core import context, errors, metrics
from project.core.verified_tokens import CACHE_KEY
from project.schemas.users import UserSchema
from project.services import access
from project.services.client import clean_ip

warden = create_app()
verified = warden.extensions[CACHE_KEY]
schema = UserSchema()
logger = logging.getLogger("warden.request")
PATH = "/api/v1/users/me"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer a warm GET /users/me here; pass every other request to Warden."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if environ["PATH_INFO"] != PATH or environ["REQUEST_METHOD"] != "GET":
        return warden(environ, start_response)
    if not header.startswith("Bearer ") or environ.get("QUERY_STRING"):
        return warden(environ, start_response)
    claims = verified.get(header[7:], None)
    if claims is None or claims.get("type") != "access":
        return warden(environ, start_response)
    started = time.perf_counter()
    request_id = uuid.uuid4().hex
    context.bind(request_id=request_id, ip=clean_ip(environ.get("REMOTE_ADDR")))
    try:
        with warden.app_context():
            user = access.check(claims, count=True)
            body = json.dumps(schema.dump(user), separators=(",", ":")).encode()
    except errors.AppError as refusal:
        context.clear()
        if isinstance(refusal, errors.TokenRevoked):
            verified.forget(header[7:])  # as Warden's own session check does
        return warden(environ, start_response)  # Warden answers the refusal itself
    context.bind(user_id=str(user.id))
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Request-ID", request_id),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
        ],
    )
    elapsed = time.perf_counter() - started
    metrics.HTTP_REQUESTS.labels(PATH, "GET", "200").inc()
    metrics.HTTP_LATENCY.labels(PATH, "GET").observe(elapsed)
    logger.info(
        "request",
        extra={"method": "GET", "path": PATH, "status": 200, "duration_ms": elapsed * 1000},
    )
    context.clear()
    return [body]
