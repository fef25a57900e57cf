"""The end of every way of proving who someone is: open the session (stand-in until the
shared second-factor foundation lands)."""

from __future__ import annotations

from project.core import metrics
from project.extensions import db
from project.models import AuditEventType, User
from project.services import audit, auth
from project.services.auth import SignIn
from project.services.client import ClientInfo


def finish(
    user: User, client: ClientInfo, *, methods: list[str], device_token: str | None = None
) -> SignIn:
    """Open a session for ``user``, proven by ``methods``; commit."""
    tokens = auth._open_session(user, client)
    audit.record(
        AuditEventType.LOGIN_SUCCEEDED, user_id=user.id, actor_id=user.id, details={"amr": methods}
    )
    db.session.commit()
    metrics.LOGINS.labels("succeeded").inc()
    metrics.TOKENS_ISSUED.labels("login").inc()
    return SignIn(tokens, device_token or "")
