"""Reachability of the database and Redis."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession

from project.extensions import db, redis_client

# A readiness probe answers within about two seconds, even when a dependency hangs.
STATEMENT_TIMEOUT_MS = 1500


class DatabaseProbe:
    """Asks the database a trivial question."""

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session = session if session is not None else db.session

    def ping(self) -> None:
        """Run SELECT 1; raises SQLAlchemyError when the database cannot answer in time."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        self.session.execute(text("SELECT 1"))
        self.session.rollback()

    def reset(self) -> None:
        """Discard the failed transaction so the session stays usable."""
        self.session.rollback()


class RedisProbe:
    """Pings Redis when one is configured."""

    def __init__(self, client: Redis | None = None) -> None:
        self.client = client if client is not None else redis_client.client

    @property
    def configured(self) -> bool:
        """Whether the app uses Redis at all."""
        return self.client is not None

    def ping(self) -> None:
        """PING; raises RedisError when Redis cannot answer in time."""
        assert self.client is not None
        self.client.ping()
