"""GET /metrics for Prometheus, behind METRICS_TOKEN when it is set."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from project.core import errors, metrics
from project.core.settings import current_settings

blp = Blueprint("metrics", __name__)


@blp.get("/metrics")
def scrape() -> Response:
    """Expose every metric in the Prometheus text format."""
    token = current_settings().METRICS_TOKEN
    if token:
        scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
        # Constant-time, so the token cannot be guessed byte by byte from response times.
        matches = hmac.compare_digest(supplied.strip().encode(), token.encode())
        if scheme.lower() != "bearer" or not matches:
            raise errors.AuthorizationRequired("A valid metrics token is required.")
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
