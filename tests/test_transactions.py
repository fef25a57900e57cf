"""Use cases that run one statement without a transaction, and leave that mode safely."""

from __future__ import annotations

import pytest
from flask import Flask

from project.extensions import db
from project.models import User
from project.services import transactions
from tests.conftest import in_autocommit


def _autocommit_now() -> bool:
    return in_autocommit(db.session.connection().connection.dbapi_connection)


def test_begin_transaction_leaves_autocommit_for_the_next_statements(app: Flask) -> None:
    with app.test_request_context():
        transactions.single_statement()
        assert _autocommit_now()
        transactions.begin_transaction()
        assert not _autocommit_now()
        db.session.remove()


def test_begin_transaction_inside_a_transaction_changes_nothing(app: Flask) -> None:
    with app.test_request_context():
        db.session.connection()  # a transaction has begun: single_statement stands aside
        transactions.single_statement()
        assert not _autocommit_now()
        pending = User(email="kept@example.com", email_normalized="kept@example.com")
        db.session.add(pending)
        transactions.begin_transaction()
        assert pending in db.session.new
        db.session.rollback()
        db.session.remove()


def test_begin_transaction_refuses_to_drop_unflushed_changes(app: Flask) -> None:
    with app.test_request_context():
        transactions.single_statement()
        db.session.add(User(email="lost@example.com", email_normalized="lost@example.com"))
        with pytest.raises(RuntimeError, match="would lose them"):
            transactions.begin_transaction()
        db.session.rollback()
        db.session.remove()
