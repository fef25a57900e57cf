"""The ``flask users`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from project.models import User
from tests.conftest import PASSWORD
from tests.live import ROOT


def test_create_admin_with_password_stdin(
    app: Flask, login: Callable[..., dict[str, Any]], client: Any
) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", " Root@Example.com ", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin Root@example.com" in result.output
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


def test_create_admin_refuses_undecodable_input_in_one_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 reach Python as surrogates, which bcrypt cannot encode."""
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "FLASK_APP": "wsgi",
    }
    env.pop("REDIS_URL", None)
    flask = str(Path(sys.executable).parent / "flask")
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    result = subprocess.run(
        [flask, "users", "create-admin", "admin@example.com", "--password-stdin"],
        cwd=ROOT,
        env=env,
        input=b"\xff\xfe a long pass phrase here\n",
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1
    assert b"the password must be UTF-8 text" in result.stderr
    assert b"Traceback" not in result.stderr


def test_audit_prune_and_docs_refuse_bad_arguments(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    huge = runner.invoke(args=["audit", "prune", "--days", "1000000"])
    assert huge.exit_code == 2 and "1000000 is not in the range" in huge.output
    nowhere = runner.invoke(args=["docs", "errors", str(tmp_path / "missing" / "errors.md")])
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output
    assert nowhere.exception is None or isinstance(nowhere.exception, SystemExit)
