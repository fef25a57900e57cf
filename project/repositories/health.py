"""Reachability of the database and Redis."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session as OrmSession

from project.extensions import db, redis_client

# A readiness probe answers within about two seconds, even when a dependency hangs.
STATEMENT_TIMEOUT_MS = 1500
ANSWER_TIMEOUT_S = 2.0
# A query pending this long is given up on, and the next probe tries another connection:
# one stuck backend must not keep readiness failing while the rest of the server serves.
STUCK_AFTER_S = 10.0
MAX_ATTEMPTS = 2  # queries (so pooled connections) a worker's probes may hold at once


class ProbeError(Exception):
    """The database probe could not get an answer (in time, or at all)."""


@dataclass
class _Attempts:
    """The probe queries of one engine in this process."""

    current: Future[None] | None = None
    started: float = 0.0
    running: int = 0


# Keyed weakly by engine; an entry lives only while a query runs, so a finished attempt
# (whose traceback would reference the engine) never keeps an engine alive.
_ATTEMPTS: WeakKeyDictionary[Engine, _Attempts] = WeakKeyDictionary()
_ATTEMPTS_LOCK = threading.Lock()


def _select_one(engine: Engine, future: Future[None], attempts: _Attempts) -> None:
    try:
        with engine.connect() as connection:
            # SET LOCAL: it ends with the transaction, also behind PgBouncer.
            connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            connection.execute(text("SELECT 1"))
            connection.rollback()
    except BaseException as exc:  # handed to the waiting probes
        future.set_exception(exc)
    else:
        future.set_result(None)
    finally:
        with _ATTEMPTS_LOCK:
            attempts.running -= 1
            if attempts.current is future:
                attempts.current = None
            if attempts.running == 0 and _ATTEMPTS.get(engine) is attempts:
                del _ATTEMPTS[engine]


def _ping_in_background(engine: Engine) -> Future[None]:
    """Run SELECT 1 on a pooled connection in a daemon thread, one at a time per engine.

    A server that hangs (stopped with SIGSTOP, or stuck) leaves pooled connections open
    and its kernel acknowledging: a query on one waits forever, and statement_timeout,
    enforced by that server, never fires. The probe waits for the thread only so long;
    probes that come meanwhile wait on the same query, so a flood of probes costs one
    query at a time and no new connections (a new connection per probe would fork a
    PostgreSQL backend for every unauthenticated request). A query pending longer than
    STUCK_AFTER_S is left to finish by itself and the next probe starts another, at most
    MAX_ATTEMPTS at once.
    """
    with _ATTEMPTS_LOCK:
        attempts = _ATTEMPTS.setdefault(engine, _Attempts())
        current = attempts.current
        stuck = current is not None and time.monotonic() - attempts.started > STUCK_AFTER_S
        if current is not None and not (stuck and attempts.running < MAX_ATTEMPTS):
            return current
        future: Future[None] = Future()
        thread = threading.Thread(
            target=_select_one,
            args=(engine, future, attempts),
            name="warden-readiness",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError as exc:  # no thread to be had (a pids limit, say)
            if attempts.running == 0:
                del _ATTEMPTS[engine]
            raise ProbeError(f"cannot start the probe: {exc}") from None
        attempts.current, attempts.started = future, time.monotonic()
        attempts.running += 1
    return future


class DatabaseProbe:
    """Asks the database a trivial question."""

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session = session if session is not None else db.session

    @property
    def engine(self) -> Engine:
        """The engine the session's queries go to."""
        bind = self.session.get_bind()
        return bind if isinstance(bind, Engine) else bind.engine

    @property
    def url(self) -> URL:
        """The database's URL (to name it in a failure)."""
        return self.engine.url

    def ping(self) -> None:
        """Run SELECT 1; raises SQLAlchemyError or ProbeError if the database cannot."""
        engine = self.engine
        if engine.dialect.name != "postgresql":
            self.session.execute(text("SELECT 1"))
            self.session.rollback()
            return
        future = _ping_in_background(engine)
        try:
            future.result(timeout=ANSWER_TIMEOUT_S)
        except TimeoutError:
            raise ProbeError(f"no answer within {ANSWER_TIMEOUT_S:g} s") from None

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
