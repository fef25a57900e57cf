"""The user queries behind the API stay on indexes as the table grows (PostgreSQL only).

20,000 users are seeded with the seeding service and ANALYZEd; each repository method is
called for real while an engine listener captures the SQL and parameters it sends, and
that exact statement is run again under EXPLAIN (FORMAT JSON). No plan may read the users
table with a Seq Scan, and each must use the index the query was designed for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, event, text

from project.extensions import db
from project.repositories.users import UserFilters, UserRepository
from project.services import seeding
from tests.conftest import is_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL"),
]

SEEDED = 20_000
PREFIX = "plan"
# plan0001200 .. plan0001299: 100 of the 20,000 users.
EMAIL_PREFIX = "plan00012"
# plan0010000 .. plan0019999: half of them, all created after the first 10,000.
BROAD_PREFIX = "plan001"
PAGE = 21  # services.users.list_users asks for limit + 1 rows

PRIMARY_KEY = "pk_users"
EMAIL_UNIQUE = "uq_users_email_normalized"
CREATED_AT_ID = "ix_users_created_at_id"


@dataclass(frozen=True)
class Sent:
    """One statement as the driver received it."""

    statement: str
    parameters: Any


@contextmanager
def captured(engine: Engine) -> Iterator[list[Sent]]:
    """Record every statement sent through ``engine`` inside the block."""
    sent: list[Sent] = []

    def listener(
        _conn: object,
        _cursor: object,
        statement: str,
        parameters: Any,
        _context: object,
        _executemany: bool,
    ) -> None:
        sent.append(Sent(statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def users_statement(sent: list[Sent]) -> Sent:
    """The one SELECT on users the repository call sent."""
    selects = [
        s
        for s in sent
        if s.statement.lstrip().upper().startswith("SELECT") and "users" in s.statement
    ]
    assert len(selects) == 1, [s.statement for s in sent]
    return selects[0]


def explain(sent: Sent) -> dict[str, Any]:
    """EXPLAIN (FORMAT JSON) of exactly that statement with exactly those parameters."""
    connection = db.session.connection()
    raw = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sent.statement, sent.parameters)
    document = raw.scalar_one()
    if isinstance(document, str):
        document = json.loads(document)
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan tree."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@dataclass(frozen=True)
class Case:
    """A repository call and the indexes its plan may use on users."""

    sql: str
    plan: dict[str, Any]
    indexes: set[str]


@pytest.fixture(scope="module")
def plans(app: Flask) -> dict[str, Case]:
    """Seed, ANALYZE, then capture and EXPLAIN each query once for the whole module.

    The tables are emptied after the first test that uses the app (conftest's cleanup);
    the plans are taken before that.
    """
    repository_calls: dict[str, tuple[Callable[[UserRepository, Any], object], set[str]]] = {
        "get_by_id": (lambda users, middle: users.get(middle.id), {PRIMARY_KEY}),
        "get_by_email": (
            lambda users, middle: users.get_by_email(middle.email_normalized),
            {EMAIL_UNIQUE},
        ),
        "admin_first_page": (
            lambda users, _middle: users.page(filters=UserFilters(), limit=PAGE, after=None),
            {CREATED_AT_ID},
        ),
        "admin_deep_page": (
            lambda users, middle: users.page(
                filters=UserFilters(), limit=PAGE, after=(middle.created_at, middle.id)
            ),
            {CREATED_AT_ID},
        ),
        "email_prefix": (
            lambda users, _middle: users.page(
                filters=UserFilters(email_prefix=EMAIL_PREFIX), limit=PAGE, after=None
            ),
            {EMAIL_UNIQUE},
        ),
        "broad_email_prefix": (
            lambda users, _middle: users.page(
                filters=UserFilters(email_prefix=BROAD_PREFIX), limit=PAGE, after=None
            ),
            {EMAIL_UNIQUE},
        ),
        "email_prefix_next_page": (
            lambda users, middle: users.page(
                filters=UserFilters(email_prefix=BROAD_PREFIX),
                limit=PAGE,
                after=middle.email_normalized,
            ),
            {EMAIL_UNIQUE},
        ),
    }
    cases: dict[str, Case] = {}
    with app.app_context():
        assert (
            seeding.seed_users(count=SEEDED, password="plan password 2026", prefix=PREFIX) == SEEDED
        )
        db.session.execute(text("ANALYZE users"))
        db.session.commit()
        middle = db.session.execute(
            text(
                "SELECT id, email_normalized, created_at FROM users "
                "ORDER BY created_at, id OFFSET :skip LIMIT 1"
            ),
            {"skip": SEEDED // 2},
        ).one()
        for name, (call, indexes) in repository_calls.items():
            db.session.remove()  # an empty identity map: get() must ask the database
            with captured(db.engine) as sent:
                call(UserRepository(), middle)
            statement = users_statement(sent)
            cases[name] = Case(statement.statement, explain(statement), indexes)
        db.session.remove()
    return cases


@pytest.mark.parametrize(
    "name",
    [
        "get_by_id",
        "get_by_email",
        "admin_first_page",
        "admin_deep_page",
        "email_prefix",
        "broad_email_prefix",
        "email_prefix_next_page",
    ],
)
def test_user_query_uses_an_index(plans: dict[str, Case], name: str) -> None:
    case = plans[name]
    on_users = [node for node in nodes(case.plan) if node.get("Relation Name") == "users"]
    assert on_users, (case.sql, case.plan)
    shown = json.dumps(case.plan, indent=1)
    for node in on_users:
        assert node["Node Type"] != "Seq Scan", (
            f"{name} reads users sequentially:\n{case.sql}\n{shown}"
        )
    used = {node.get("Index Name") for node in nodes(case.plan)} - {None}
    assert used & case.indexes, (
        f"{name} uses {used or 'no index'}, expected one of {case.indexes}:\n{shown}"
    )


def test_deep_page_seeks_with_a_row_comparison(plans: dict[str, Case]) -> None:
    case = plans["admin_deep_page"]
    # The cursor is a row comparison, so the index scan starts at the cursor instead of
    # filtering every earlier row.
    assert "(users.created_at, users.id) >" in case.sql
    conditions = [
        node.get("Index Cond", "")
        for node in nodes(case.plan)
        if node.get("Index Name") == CREATED_AT_ID
    ]
    assert any("ROW(created_at, id) >" in condition for condition in conditions), conditions


@pytest.mark.parametrize("name", ["email_prefix", "broad_email_prefix", "email_prefix_next_page"])
def test_email_prefix_is_an_ordered_index_range(plans: dict[str, Case], name: str) -> None:
    case = plans[name]
    assert "LIKE" in case.sql
    conditions = [
        node.get("Index Cond", "")
        for node in nodes(case.plan)
        if node.get("Index Name") == EMAIL_UNIQUE
    ]
    # In the "C" collation LIKE 'plan001%' becomes a range: >= 'plan001' AND < 'plan002'.
    assert any(">=" in condition and "<" in condition for condition in conditions), conditions
    # The index already gives email order: no sort of every match before the LIMIT.
    assert not [node for node in nodes(case.plan) if node["Node Type"] == "Sort"], case.plan
