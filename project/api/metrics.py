"""GET /metrics for Prometheus, behind METRICS_TOKEN when it is set."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from project.core import errors, metrics

blp = Blueprint("metrics", __name__)


@blp.get("/metrics")
def scrape() -> Response:
    """Expose every metric in the Prometheus text format."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        # Constant-time, so the token cannot be guessed byte by byte from response times.
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            raise errors.AuthorizationRequired("A valid metrics token is required.")
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
