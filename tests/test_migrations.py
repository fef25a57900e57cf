"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    String,
    Uuid,
    column,
    insert,
    inspect,
    select,
    table,
    text,
)

from project import create_app
from project.core import emails
from project.extensions import db
from project.models.audit_event import is_partition
from tests.conftest import make_settings


def test_upgrade_on_an_empty_database_leaves_no_pending_diff(empty_database_url: str) -> None:
    app = create_app(make_settings(DATABASE_URL=empty_database_url))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, repr(result.exception)
    with app.app_context():
        with db.engine.connect() as connection:
            # The audit trail's monthly partitions are no model's table.
            opts = {"compare_type": True, "include_name": _not_a_partition}
            context = MigrationContext.configure(connection, opts=opts)
            assert compare_metadata(context, db.metadata) == []
            assert {"users", "sessions", "alembic_version"} <= set(
                inspect(connection).get_table_names()
            )
        result = runner.invoke(args=["db", "downgrade", "base"])
        assert result.exit_code == 0, repr(result.exception)
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def _not_a_partition(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and name is not None and is_partition(name))


# carl@example.com with a full-width domain, which UTS 46 maps to ASCII.
FULL_WIDTH_CARL = "carl@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"


def _app_at_0004(url: str) -> Flask:
    app = create_app(make_settings(DATABASE_URL=url))
    result = app.test_cli_runner().invoke(args=["db", "upgrade", "0004"])
    assert result.exit_code == 0, repr(result.exception)
    return app


# The users table as revision 0004 has it: the model may have gained columns since.
USERS_AT_0004 = table(
    "users",
    column("id", Uuid()),
    column("email", String()),
    column("email_normalized", String()),
    column("password_hash", String()),
    column("role", String()),
    column("is_active", Boolean()),
    column("email_verified", Boolean()),
    column("created_at", DateTime(timezone=True)),
    column("updated_at", DateTime(timezone=True)),
)


def _add_rows(app: Flask, rows: list[tuple[str, str]]) -> list[uuid.UUID]:
    """Store (email, email_normalized) rows as they are, as an older release did."""
    ids = [uuid.uuid4() for _ in rows]
    now = datetime.now(UTC)
    values = [
        {
            "id": user_id,
            "email": email,
            "email_normalized": key,
            "password_hash": "x",
            "role": "user",
            "is_active": True,
            "email_verified": False,
            "created_at": now,
            "updated_at": now,
        }
        for user_id, (email, key) in zip(ids, rows, strict=True)
    ]
    with app.app_context():
        db.session.execute(insert(USERS_AT_0004), values)
        db.session.commit()
    return ids


def _rows(app: Flask) -> dict[uuid.UUID, tuple[str, str]]:
    with app.app_context():
        found = db.session.execute(
            select(USERS_AT_0004.c.id, USERS_AT_0004.c.email, USERS_AT_0004.c.email_normalized)
        )
        return {user_id: (email, key) for user_id, email, key in found}


def _version(app: Flask) -> str | None:
    with app.app_context(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_0005_rewrites_addresses_to_the_normalized_forms(empty_database_url: str) -> None:
    app = _app_at_0004(empty_database_url)
    rows = [
        ("Bob@Example.COM", "bob@example.com"),
        ("Ann@XN--exmple-cua.com", "ann@xn--exmple-cua.com"),
        ("eve@ꮳꮃꭹ.com", "eve@ꮳꮃꭹ.com"),
        ("Root@localhost", "root@localhost"),  # refused by the library: left as it is
        ("plain@example.com", "plain@example.com"),
        # Keys that trade places in one upgrade (the unique index holds throughout).
        ("a@example.org", "b@example.org"),
        ("b@example.org", "a@example.org"),
    ]
    ids = _add_rows(app, rows)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, repr(result.exception)
    assert _rows(app) == dict(
        zip(
            ids,
            [
                ("Bob@example.com", "bob@example.com"),
                ("Ann@exämple.com", "ann@exämple.com"),
                ("eve@ᏣᎳᎩ.com", "eve@ᏣᎳᎩ.com"),
                ("Root@localhost", "root@localhost"),
                ("plain@example.com", "plain@example.com"),
                ("a@example.org", "a@example.org"),
                ("b@example.org", "b@example.org"),
            ],
            strict=True,
        )
    )
    # The keys are what the application looks up.
    for email, key in _rows(app).values():
        assert emails.key_of(email) == key
    # Downgrade keeps the rows as they are.
    result = app.test_cli_runner().invoke(args=["db", "downgrade", "0004"])
    assert result.exit_code == 0, repr(result.exception)
    assert _rows(app)[ids[1]] == ("Ann@exämple.com", "ann@exämple.com")
    with app.app_context():
        db.engine.dispose()


def test_0005_refuses_colliding_accounts_and_changes_nothing(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app_at_0004(empty_database_url)
    rows = [
        ("bob@exämple.com", "bob@exämple.com"),
        ("Bob@xn--exmple-cua.com", "bob@xn--exmple-cua.com"),
        ("Carl@Example.COM", "carl@example.com"),
        (FULL_WIDTH_CARL, FULL_WIDTH_CARL),
        ("Dan@Example.COM", "dan@example.com"),
    ]
    ids = _add_rows(app, rows)
    before = _rows(app)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    # Flask-Migrate logs the error and exits with 1.
    message = "\n".join(r.getMessage() for r in caplog.records if r.name == "flask_migrate")
    assert "nothing was changed" in message
    assert f"bob@exämple.com: {ids[1]} (Bob@xn--exmple-cua.com), {ids[0]} (bob@exämple.com)" in (
        message
    )
    assert f"carl@example.com: {ids[2]} (Carl@Example.COM), {ids[3]} ({FULL_WIDTH_CARL})" in (
        message
    )
    assert str(ids[4]) not in message
    assert _rows(app) == before
    assert _version(app) == "0004"
    with app.app_context():
        db.engine.dispose()


# The audit table as revision 0005 has it.
EVENTS_AT_0005 = table(
    "audit_events",
    column("id", Uuid()),
    column("occurred_at", DateTime(timezone=True)),
    column("event_type", String()),
    column("details", JSON()),
)


def test_0009_keeps_every_event_and_partitions_them_by_month_on_postgresql(
    empty_database_url: str,
) -> None:
    app = create_app(make_settings(DATABASE_URL=empty_database_url))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "0005"]).exit_code == 0
    now = datetime.now(UTC)
    events = {
        uuid.uuid4(): moment
        for moment in (
            now,
            now - timedelta(days=40),
            now - timedelta(days=700),
            datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        )
    }
    with app.app_context():
        db.session.execute(
            insert(EVENTS_AT_0005),
            [
                {"id": i, "occurred_at": at, "event_type": "logout", "details": {}}
                for i, at in events.items()
            ],
        )
        db.session.commit()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, repr(result.exception)

    def stored() -> dict[uuid.UUID, datetime]:
        with app.app_context():
            found = db.session.execute(select(EVENTS_AT_0005.c.id, EVENTS_AT_0005.c.occurred_at))
            return {i: at.astimezone(UTC) for i, at in found}

    assert stored() == events
    with app.app_context(), db.engine.connect() as connection:
        key = inspect(connection).get_pk_constraint("audit_events")["constrained_columns"]
        assert key == ["id", "occurred_at"]
        if connection.dialect.name == "postgresql":
            partitions = set(
                connection.scalars(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
                        " ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass"
                    )
                )
            )
            # From the oldest event's month to three months ahead, and the default.
            assert {"audit_events_2024_02", "audit_events_default"} <= partitions
            assert f"audit_events_{now:%Y_%m}" in partitions
            assert len(partitions) > 24
            oldest = connection.scalar(text("SELECT count(*) FROM audit_events_2024_02"))
            assert oldest == 1
            assert connection.scalar(text("SELECT count(*) FROM audit_events_default")) == 0
    result = runner.invoke(args=["db", "downgrade", "0005"])
    assert result.exit_code == 0, repr(result.exception)
    assert stored() == events
    with app.app_context(), db.engine.connect() as connection:
        key = inspect(connection).get_pk_constraint("audit_events")["constrained_columns"]
        assert key == ["id"]
        assert not [name for name in inspect(connection).get_table_names() if "_20" in name]
    with app.app_context():
        db.engine.dispose()
