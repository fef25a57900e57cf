"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from marshmallow import Schema, fields

from project.api.arguments import Blueprint
from project.services import health

blp = Blueprint(
    "health",
    __name__,
    url_prefix="/health",
    description="Health probes",
    rate_limited=False,
    strict=False,
)


class HealthSchema(Schema):
    """A probe's answer."""

    status = fields.String(required=True, metadata={"example": "ok"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={
            "description": "Each dependency checked, `ok` or `fail` (none for liveness)",
            "example": {"database": "ok", "redis": "ok"},
        },
    )


@blp.route("/live", methods=["GET"])
@blp.response(200, HealthSchema)
def live() -> dict[str, object]:
    """Answer while the process runs.

    For liveness probes: 200 while the process runs.
    """
    return {"status": "ok", "checks": {}}


@blp.route("/ready", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="`not_ready`")
def ready() -> dict[str, object]:
    """Answer 200 when the database and, when configured, Redis can serve requests.

    For readiness probes and load balancers: checks the database and, when configured, Redis,
    each with a short timeout; 503 `not_ready` names the failed checks.
    """
    return {"status": "ok", "checks": health.readiness()}
