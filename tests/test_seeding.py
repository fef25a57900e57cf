"""flask seed-users: many users fast, usable for login and listing."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from project.extensions import db
from project.models import User


def test_seed_users_inserts_usable_accounts(app: Flask, client: FlaskClient) -> None:
    result = app.test_cli_runner().invoke(
        args=["seed-users", "1200", "--password", "seeded secret phrase"]
    )
    assert result.exit_code == 0, result.output
    assert "Inserted 1200 users" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1200
        assert db.session.scalar(select(func.count()).where(User.is_active.is_(False))) == 24
    login = client.post(
        "/api/v1/auth/login",
        json={"email": "seed0000007@seed.example", "password": "seeded secret phrase"},
    )
    assert login.status_code == 200
    again = app.test_cli_runner().invoke(args=["seed-users", "10", "--prefix", "more"])
    assert again.exit_code == 0 and "Inserted 10 users" in again.output


def test_seeding_refuses_production(app_factory: Any) -> None:
    result = app_factory(APP_ENV="production").test_cli_runner().invoke(args=["seed-users", "5"])
    assert result.exit_code == 1 and "production" in result.output


def test_seeding_refuses_bad_input_in_one_line(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-users", "3", "--prefix", "twice"])
    assert first.exit_code == 0, first.output
    # The second run's emails collide with the first's (COPY on PostgreSQL, INSERT on SQLite).
    again = runner.invoke(args=["seed-users", "5", "--prefix", "twice"])
    assert again.exit_code == 1 and "another --prefix" in again.output, again.output
    for prefix in ["Seed", "x" * 33, "-a", "a@b", "\udcff"]:
        refused = runner.invoke(args=["seed-users", "2", "--prefix", prefix])
        assert refused.exit_code == 1 and "prefix must be" in refused.output, refused.output
    undecodable = runner.invoke(args=["seed-users", "2", "--prefix", "ok", "--password", "\udcff"])
    assert undecodable.exit_code == 1 and "UTF-8" in undecodable.output
    for result in [again, undecodable]:
        assert result.exception is None or isinstance(result.exception, SystemExit)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 3
