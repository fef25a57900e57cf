"""Reachability of the database and Redis."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from redis import Redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.pool import NullPool

from project.extensions import db, redis_client

# A readiness probe answers within about two seconds, even when a dependency hangs.
STATEMENT_TIMEOUT_MS = 1500
CONNECT_TIMEOUT_S = 2  # libpq's smallest
_PROBE_ENGINES: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _probe_engine(engine: Engine) -> Engine:
    """An engine on the same database that opens a new connection for every probe.

    A server that hangs (stopped with SIGSTOP, or stuck) leaves pooled connections open
    and its kernel acknowledging: a query on one waits forever, and statement_timeout,
    enforced by that server, never fires. A new connection is bounded by connect_timeout.
    """
    probe = _PROBE_ENGINES.get(engine)
    if probe is None:
        probe = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            hide_parameters=True,
        )
        _PROBE_ENGINES[engine] = probe
    return probe


class DatabaseProbe:
    """Asks the database a trivial question."""

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session = session if session is not None else db.session

    def ping(self) -> None:
        """Run SELECT 1; raises SQLAlchemyError when the database cannot answer in time."""
        bind = self.session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        if engine.dialect.name != "postgresql":
            self.session.execute(text("SELECT 1"))
            self.session.rollback()
            return
        with _probe_engine(engine).connect() as connection:
            # SET LOCAL: it ends with the transaction, also behind PgBouncer.
            connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            connection.execute(text("SELECT 1"))
            connection.rollback()

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
