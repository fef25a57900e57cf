"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from project import create_app
from project.extensions import db
from tests.conftest import make_settings


def test_upgrade_on_an_empty_database_leaves_no_pending_diff(empty_database_url: str) -> None:
    app = create_app(make_settings(DATABASE_URL=empty_database_url))
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
