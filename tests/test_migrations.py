"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
