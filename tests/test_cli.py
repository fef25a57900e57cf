"""The ``flask users`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import make_url

from project.models import User
from tests.conftest import PASSWORD, is_postgres, make_settings
from tests.live import ROOT
from tests.mailbox import free_port

# Nothing listens on port 1 of loopback: connections are refused at once.
REFUSING_DATABASE = "postgresql://warden:hunter2@127.0.0.1:1/warden"


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


def test_retention_and_docs_refuse_bad_arguments(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["retention", "run", "--job", "users"])
    assert unknown.exit_code == 2 and "'users' is not one of" in unknown.output
    nowhere = runner.invoke(args=["docs", "errors", str(tmp_path / "missing" / "errors.md")])
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output
    assert nowhere.exception is None or isinstance(nowhere.exception, SystemExit)


def _flask(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a flask command as an operator would, with ``env`` over a development setup."""
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "FLASK_APP": "wsgi",
        "FLASK_SKIP_DOTENV": "1",
        **env,
    }
    if "REDIS_URL" not in env:
        environment.pop("REDIS_URL", None)
    flask = str(Path(sys.executable).parent / "flask")
    return subprocess.run(
        [flask, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """Check a command failed with one line, no traceback and no password; return it."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter2" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_release_line_names_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    result = _flask("db", "upgrade", tmp_path=tmp_path, DATABASE_URL=REFUSING_DATABASE)
    assert one_line_failure(result) == (
        "warden: database unreachable at 127.0.0.1:1: connection refused"
    )


@pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL")
def test_the_release_line_names_a_missing_database_in_one_line(tmp_path: Path) -> None:
    server = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"warden_missing_{uuid.uuid4().hex[:8]}"
    missing = server.set(database=name, password="hunter2")
    result = _flask(
        "db",
        "upgrade",
        tmp_path=tmp_path,
        DATABASE_URL=missing.render_as_string(hide_password=False),
    )
    where = f"{server.host}:{server.port or 5432}"
    assert one_line_failure(result) == f'warden: database "{name}" does not exist at {where}'


def test_the_worker_names_an_unreachable_redis_in_one_line(tmp_path: Path) -> None:
    result = _flask(
        "worker", "--burst", tmp_path=tmp_path, REDIS_URL="redis://:hunter2@127.0.0.1:1/0"
    )
    line = one_line_failure(result)
    assert line.startswith("warden: Redis unreachable: ")
    assert "127.0.0.1:1" in line and "refused" in line


@pytest.mark.skipif(not make_settings().REDIS_URL, reason="needs TEST_REDIS_URL")
def test_the_worker_serves_its_metrics_on_its_port(tmp_path: Path) -> None:
    migrated = _flask("db", "upgrade", tmp_path=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REDIS_URL": str(make_settings().REDIS_URL),
        "WORKER_METRICS_PORT": str(port),
        "FLASK_APP": "wsgi",
        "FLASK_SKIP_DOTENV": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "flask"), "worker"],
            cwd=ROOT,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, body = time.monotonic() + 30, ""
        while not body and time.monotonic() < deadline and worker.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics", timeout=2
                ) as answer:
                    body = answer.read().decode()
            except OSError:
                time.sleep(0.2)
        assert worker.poll() is None, log.read_text()
        # Warden's own metrics, the ones the worker moves, not only the process's.
        assert "warden_mails_total" in body
        assert "warden_retention_rows_removed_total" in body
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_other_commands_name_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    result = _flask("retention", "run", tmp_path=tmp_path, DATABASE_URL=REFUSING_DATABASE)
    assert one_line_failure(result) == (
        "warden: database unreachable at 127.0.0.1:1: connection refused"
    )
