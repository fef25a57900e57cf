"""The application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from config import load_settings
from project import create_app
from project.core.settings import current_settings
from tests.conftest import make_settings


def test_factory_builds_a_testing_app(app: Flask) -> None:
    assert app.testing
    assert current_settings(app).BCRYPT_ROUNDS == 4
    assert {"v1", "health", "api-docs"} <= set(app.blueprints)


def test_every_api_route_lives_under_v1(app: Flask) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    api_rules = {
        rule for rule in rules if not rule.startswith(("/health", "/.well-known", "/metrics"))
    }
    assert all(rule.startswith("/api/v1/") for rule in api_rules)
    assert "/api/v1/auth/register" in rules
    assert "/api/v1/users/<uuid:user_id>" in rules


def test_two_apps_do_not_share_config() -> None:
    first = create_app(make_settings(ACCESS_TOKEN_TTL=60))
    second = create_app(make_settings(ACCESS_TOKEN_TTL=120))
    assert current_settings(first).ACCESS_TOKEN_TTL == 60
    assert current_settings(second).ACCESS_TOKEN_TTL == 120


def test_default_sqlite_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "warden.db"
    create_app(load_settings({"DATABASE_URL": f"sqlite:///{target}"}))
    assert target.parent.is_dir()
