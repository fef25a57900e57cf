"""Command-line tasks: ``flask users ...``, ``flask retention run``, ``flask worker``."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError
from prometheus_client import start_http_server
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from sqlalchemy.exc import OperationalError

from config import redis_tls_options
from project.api.errors import errors_markdown
from project.core import tasks
from project.core.errors import AppError
from project.core.outages import describe_database_error, describe_redis_error
from project.core.settings import configuration_markdown, current_settings
from project.schemas.auth import RegisterSchema
from project.schemas.fields import storable_text
from project.services import retention, seeding, totp
from project.services import users as user_service

users_cli = AppGroup("users", help="Manage user accounts.")
SEED_PREFIX = re.compile(r"[a-z0-9][a-z0-9._+-]{0,31}")


def _text(value: str, name: str) -> str:
    """Refuse what the database and bcrypt cannot take: undecodable bytes, NUL."""
    if not storable_text(value):
        raise click.ClickException(f"{name} must be UTF-8 text without NUL characters")
    return value


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(email: str, password_stdin: bool) -> None:
    """Create an admin account; prompts for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    email, password = _text(email, "the email"), _text(password, "the password")
    try:
        data = RegisterSchema().load({"email": email, "password": password})
        user = user_service.create_admin(email=data["email"], password=data["password"])
    except ValidationError as exc:
        raise click.ClickException(_first_messages(exc.messages)) from None
    except AppError as exc:
        reasons = exc.extra.get("errors", {}).get("password", [])
        raise click.ClickException(" ".join([exc.detail, *reasons])) from None
    click.echo(f"Created admin {user.email} ({user.id})")


retention_cli = AppGroup("retention", help="Delete what is kept no longer.")


@retention_cli.command("run")
@click.option(
    "--job", "jobs", multiple=True, type=click.Choice(retention.JOBS), help="Only this job."
)
def run_retention(jobs: tuple[str, ...]) -> None:
    """Run the retention jobs once (the worker also runs them every RETENTION_INTERVAL)."""
    for done in retention.run(jobs=jobs or retention.JOBS):
        if not done.ran:
            click.echo(f"{done.job}: skipped, another runner holds it")
            continue
        click.echo(f"{done.job}: removed {done.removed} rows in {done.seconds:.1f} s")


factors_cli = AppGroup("factors", help="Maintain second factors.")


@factors_cli.command("reseal")
def reseal_factors() -> None:
    """Encrypt every TOTP secret under the first MFA_ENCRYPTION_KEYS key (key rotation)."""
    click.echo(f"Re-encrypted {totp.reseal_secrets()} authenticator app secrets")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def run_worker(burst: bool) -> None:
    """Run the RQ worker: mail, other deferred jobs and scheduled retention (needs REDIS_URL)."""
    jobs = tasks.queue()
    if jobs is None:
        raise click.ClickException(
            "REDIS_URL is not set: without Redis, jobs run in the web process"
        )
    # SimpleWorker runs jobs in this process, inside the app context the command set up;
    # forking per job would share the database connection pool across processes.
    # The worker blocks on the queue for long stretches: no short socket timeout here.
    settings = current_settings()
    connection = Redis.from_url(
        str(settings.REDIS_URL),
        **redis_tls_options(settings.REDIS_URL, verify=settings.REDIS_TLS_VERIFY),
    )
    worker = SimpleWorker([Queue(jobs.name, connection=connection)], connection=connection)
    if settings.WORKER_METRICS_PORT:
        start_http_server(settings.WORKER_METRICS_PORT)
    retention.schedule()
    worker.work(burst=burst, with_scheduler=True, logging_level=settings.LOG_LEVEL)


@click.command("seed-users")
@with_appcontext
@click.argument("count", type=click.IntRange(min=1))
@click.option("--password", default="seeded password 2026", show_default=True)
@click.option("--prefix", default="seed", show_default=True, help="Email prefix.")
@click.option("--force", is_flag=True, help="Allow seeding when APP_ENV is production.")
def seed_users(count: int, password: str, prefix: str, force: bool) -> None:
    """Insert COUNT users quickly (COPY on PostgreSQL) for benchmarks and load tests."""
    if current_settings().APP_ENV == "production" and not force:
        raise click.ClickException("refusing to seed a production database (use --force)")
    if not SEED_PREFIX.fullmatch(prefix):
        raise click.ClickException(
            "the prefix must be 1 to 32 lower-case letters, digits, '.', '_', '+' or '-',"
            " starting with a letter or digit"
        )
    started = time.perf_counter()
    try:
        inserted = seeding.seed_users(
            count=count, password=_text(password, "the password"), prefix=prefix
        )
    except AppError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"Inserted {inserted} users in {time.perf_counter() - started:.1f} s")


docs_cli = AppGroup("docs", help="Generate documentation from the code.")


@docs_cli.command("errors")
@click.argument("output", type=click.Path(dir_okay=False), default="docs/errors.md")
def write_errors(output: str) -> None:
    """Write the error code catalogue (docs/errors.md)."""
    _write(output, errors_markdown())


@docs_cli.command("settings")
@click.argument("output", type=click.Path(dir_okay=False), default="docs/configuration.md")
def write_settings(output: str) -> None:
    """Write the settings reference (docs/configuration.md)."""
    _write(output, configuration_markdown())


def _write(output: str, text: str) -> None:
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {output}")


def _first_messages(messages: object) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in messages.items())
    return str(messages)


@contextmanager
def outages_in_one_line(app: Flask) -> Iterator[None]:
    """Turn an unreachable database or Redis into one ``warden:`` line and exit status 1."""
    settings = current_settings(app)
    try:
        yield
    except OperationalError as exc:
        raise SystemExit(f"warden: {describe_database_error(exc, settings.DATABASE_URL)}") from None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise SystemExit(f"warden: {describe_redis_error(exc, settings.REDIS_URL)}") from None


def register_commands(app: Flask) -> None:
    """Attach the command groups to ``app``, and one-line outages to the running command."""
    app.cli.add_command(users_cli)
    app.cli.add_command(retention_cli)
    app.cli.add_command(factors_cli)
    app.cli.add_command(docs_cli)
    app.cli.add_command(seed_users)
    app.cli.add_command(run_worker)
    # Flask's CLI builds the app while resolving a command (its own, Flask-Migrate's `db`
    # or ours); the command runs inside this context, which hands its exception to the
    # resources registered here as it closes.
    command = click.get_current_context(silent=True)
    if command is not None:
        command.with_resource(outages_in_one_line(app))
