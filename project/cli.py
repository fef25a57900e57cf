"""Command-line tasks: ``flask users ...``."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError

from project.core.errors import AppError
from project.schemas.auth import RegisterSchema
from project.services import users as user_service

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(email: str, password_stdin: bool) -> None:
    """Create an admin account; prompts for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = RegisterSchema().load({"email": email, "password": password})
        user = user_service.create_admin(email=data["email"], password=data["password"])
    except ValidationError as exc:
        raise click.ClickException(_first_messages(exc.messages)) from None
    except AppError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"Created admin {user.email} ({user.id})")


def _first_messages(messages: object) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in messages.items())
    return str(messages)


def register_commands(app: Flask) -> None:
    """Attach the command groups to ``app``."""
    app.cli.add_command(users_cli)
