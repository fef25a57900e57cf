"""The ``flask users`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from project.models import User
from tests.conftest import PASSWORD


def test_create_admin_with_password_stdin(
    app: Flask, login: Callable[..., dict[str, Any]], client: Any
) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", " Root@Example.com ", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin Root@Example.com" in result.output
    assert PASSWORD not in result.output
    tokens = login("root@example.com")
    me = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json["role"] == "admin"


def test_create_admin_prompts_twice_and_hides_input(
    app: Flask, login: Callable[..., dict[str, Any]]
) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "ops@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password:" in result.output and "Repeat for confirmation:" in result.output
    assert PASSWORD not in result.output
    login("ops@example.com")


def test_create_admin_mismatched_confirmation(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "ops@example.com"],
        input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert "Error: The two entered values do not match." in result.output
    assert result.exit_code == 0


def test_create_admin_refuses_bad_input(app: Flask, make_user: Callable[..., User]) -> None:
    runner = app.test_cli_runner()
    weak = runner.invoke(
        args=["users", "create-admin", "a@example.com", "--password-stdin"], input="short\n"
    )
    assert weak.exit_code == 1 and "password" in weak.output
    bad = runner.invoke(
        args=["users", "create-admin", "not-an-email", "--password-stdin"], input=PASSWORD
    )
    assert bad.exit_code == 1 and "email" in bad.output
    make_user(email="taken@example.com")
    taken = runner.invoke(
        args=["users", "create-admin", "taken@example.com", "--password-stdin"], input=PASSWORD
    )
    assert taken.exit_code == 1 and "already exists" in taken.output
