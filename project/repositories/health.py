"""Reachability of the database and Redis."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from weakref import WeakKeyDictionary

from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session as OrmSession

from project.extensions import db, redis_client

# A readiness probe answers within about two seconds, even when a dependency hangs.
STATEMENT_TIMEOUT_MS = 1500
ANSWER_TIMEOUT_S = 2.0
_IN_FLIGHT: WeakKeyDictionary[Engine, Future[None]] = WeakKeyDictionary()
_IN_FLIGHT_LOCK = threading.Lock()


class ProbeTimeoutError(Exception):
    """The database did not answer the probe in time (it may hang)."""


def _select_one(engine: Engine, future: Future[None]) -> None:
    try:
        with engine.connect() as connection:
            # SET LOCAL: it ends with the transaction, also behind PgBouncer.
            connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            connection.execute(text("SELECT 1"))
            connection.rollback()
    except BaseException as exc:  # handed to the waiting probe
        future.set_exception(exc)
    else:
        future.set_result(None)


def _ping_in_background(engine: Engine) -> Future[None]:
    """Run SELECT 1 on a pooled connection in a daemon thread, one at a time per engine.

    A server that hangs (stopped with SIGSTOP, or stuck) leaves pooled connections open
    and its kernel acknowledging: a query on one waits forever, and statement_timeout,
    enforced by that server, never fires. The probe waits for the thread only so long;
    probes that come meanwhile wait on the same query, so a flood of probes costs one
    query at a time and no new connections (a new connection per probe would fork a
    PostgreSQL backend for every unauthenticated request).
    """
    with _IN_FLIGHT_LOCK:
        future = _IN_FLIGHT.get(engine)
        if future is None or future.done():
            future = Future()
            thread = threading.Thread(
                target=_select_one, args=(engine, future), name="warden-readiness", daemon=True
            )
            thread.start()
            _IN_FLIGHT[engine] = future
    return future


class DatabaseProbe:
    """Asks the database a trivial question."""

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session = session if session is not None else db.session

    def ping(self) -> None:
        """Run SELECT 1; raises SQLAlchemyError or ProbeTimeoutError if the database cannot."""
        bind = self.session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        if engine.dialect.name != "postgresql":
            self.session.execute(text("SELECT 1"))
            self.session.rollback()
            return
        future = _ping_in_background(engine)
        try:
            future.result(timeout=ANSWER_TIMEOUT_S)
        except TimeoutError:
            raise ProbeTimeoutError(f"no answer within {ANSWER_TIMEOUT_S:g} s") from None

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
