"""Admin-only views across users: the audit trail."""

from __future__ import annotations

from typing import Any

from project.api.arguments import Blueprint
from project.api.auth import admin_required
from project.schemas.audit import AdminEventPageSchema, AdminEventQuerySchema
from project.services import audit
from project.services.audit import EventPage

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Administration")


@blp.route("/audit-events", methods=["GET"])
@admin_required
@blp.arguments(AdminEventQuerySchema, location="query")
@blp.response(200, AdminEventPageSchema)
def audit_events(query: dict[str, Any]) -> EventPage:
    """Search the audit trail by user, event type and time range, newest first.

    Admins only. Filter by user, event type and a time range (since inclusive, until exclusive);
    newest first, in pages.
    """
    return audit.search(
        user_id=query.get("user_id"),
        event_type=query.get("type"),
        since=query.get("since"),
        until=query.get("until"),
        limit=query["limit"],
        before=query.get("cursor"),
    )
