"""How a use case uses the request's database transaction."""

from __future__ import annotations

from project.extensions import db


def single_read() -> None:
    """Run this use case's one query outside a transaction: no BEGIN and no ROLLBACK.

    A single statement is atomic and sees one snapshot by itself, so for a use case that
    writes nothing and reads once the transaction only costs two of its four round trips
    to the database. Does nothing if the request has already begun a transaction.
    """
    if not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
