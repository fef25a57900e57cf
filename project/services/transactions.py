"""How a use case uses the request's database transaction."""

from __future__ import annotations

from project.extensions import db
from project.repositories.user_cache import PENDING

AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def single_statement() -> None:
    """Run this use case's next statement outside a transaction: no BEGIN, no COMMIT.

    A single statement is atomic and sees one snapshot by itself, so for a use case whose
    work is one query (or one conditional UPDATE) the transaction only costs two of its
    round trips to the database. Does nothing if the request has already begun a
    transaction. A use case that then needs more statements calls ``begin_transaction``.
    """
    if not db.session().in_transaction():
        db.session.connection(execution_options=AUTOCOMMIT)


def begin_transaction() -> None:
    """Leave ``single_statement`` mode: the statements after this share one transaction.

    Call it before changing any ORM object: leaving the mode ends the session's
    transaction, which would drop unflushed changes and the after-commit hooks of
    flushed ones (the user cache's invalidation), so it refuses to run with either.
    """
    session = db.session()
    if (
        session.in_transaction()
        and session.connection().get_execution_options().get("isolation_level")
        == AUTOCOMMIT["isolation_level"]
    ):
        if session.new or session.dirty or session.deleted or session.info.get(PENDING):
            raise RuntimeError("begin_transaction() after ORM changes would lose them")
        # Nothing to undo: each statement so far committed by itself. The connection goes
        # back to the pool (transactional again) and the next statement opens a transaction.
        session.rollback()
