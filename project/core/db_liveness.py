"""A liveness check for pooled PostgreSQL connections that costs no round trip."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError


def _closed_by_server(dbapi_connection: Any) -> bool:
    """Whether the server has hung up on this idle connection (or it is already broken).

    An idle connection has nothing to read: if its socket is readable, the server closed it
    (restart, failover, idle timeout) or sent something Warden never asked for. Either way
    the connection is replaced; a false alarm only costs a reconnect. (So an app that
    LISTENs would reconnect after each NOTIFY: Warden does not.)
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
    except (OSError, psycopg.Error):
        return True
    return bool(poller.poll(0))


def _check_on_checkout(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    if _closed_by_server(dbapi_connection):
        # The pool invalidates this connection and reconnects in its place (three tries).
        raise DisconnectionError("the database server closed this pooled connection")


def install_liveness_check(engine: Engine) -> None:
    """Replace dead pooled connections at checkout without pinging the server."""
    if engine.dialect.name == "postgresql" and not event.contains(
        engine, "checkout", _check_on_checkout
    ):
        event.listen(engine, "checkout", _check_on_checkout)
