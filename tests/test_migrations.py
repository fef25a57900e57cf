"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    Boolean,
    DateTime,
    String,
    Uuid,
    column,
    insert,
    inspect,
    select,
    table,
)

from config import engine_options
from project import create_app
from project.extensions import db
from tests.conftest import make_config


def test_upgrade_on_an_empty_database_leaves_no_pending_diff(empty_database_url: str) -> None:
    config = make_config(
        SQLALCHEMY_DATABASE_URI=empty_database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(empty_database_url),
    )
    app = create_app(config)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, repr(result.exception)
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
            assert {"users", "sessions", "alembic_version"} <= set(
                inspect(connection).get_table_names()
            )
        result = runner.invoke(args=["db", "downgrade", "base"])
        assert result.exit_code == 0, repr(result.exception)
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_0005_compares_a_domains_a_labels_as_unicode_and_downgrades(
    empty_database_url: str,
) -> None:
    config = make_config(
        SQLALCHEMY_DATABASE_URI=empty_database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(empty_database_url),
    )
    app = create_app(config)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "0004"]).exit_code == 0
    stored = {
        "Bob@XN--Exmple-CUA.com": "bob@xn--exmple-cua.com",  # rewritten
        "carol@exämple.com": "carol@exämple.com",
        "carol@xn--exmple-cua.com": "carol@xn--exmple-cua.com",  # kept: carol has it
        "dan@xn--abc-.com": "dan@xn--abc-.com",  # not an A-label: kept
        "eve@example.com": "eve@example.com",
    }
    users = table(
        "users",
        column("id", Uuid),
        column("email", String),
        column("email_normalized", String),
        column("password_hash", String),
        column("role", String),
        column("is_active", Boolean),
        column("email_verified", Boolean),
        column("created_at", DateTime(timezone=True)),
        column("updated_at", DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                insert(users),
                [
                    {
                        "id": uuid.uuid4(),
                        "email": email,
                        "email_normalized": normalized,
                        "password_hash": "x",
                        "role": "user",
                        "is_active": True,
                        "email_verified": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for email, normalized in stored.items()
                ],
            )

        def normalized_forms() -> dict[str, str]:
            with db.engine.connect() as connection:
                rows = connection.execute(select(users.c.email, users.c.email_normalized))
                return {email: normalized for email, normalized in rows}

        assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
        assert normalized_forms() == stored | {"Bob@XN--Exmple-CUA.com": "bob@exämple.com"}
        assert runner.invoke(args=["db", "downgrade", "0004"]).exit_code == 0
        assert normalized_forms() == stored
        db.engine.dispose()
