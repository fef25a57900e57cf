"""make postman: run the Postman collection with newman against a live Warden.

Starts the Procfile processes for real (gunicorn web and the mail worker, in production mode)
on a fresh PostgreSQL database, a flushed Redis database and a local SMTP sink, creates an
admin, runs docs/postman/warden.postman_collection.json with newman, stops everything and exits
with newman's exit code. Extra arguments are passed on to ``newman run`` (e.g.
``--reporters cli,junit``). Run ``npm ci`` first: newman comes from node_modules.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql
from redis import Redis

from tests.live import BIN, ROOT, Deployment, production_env
from tests.mailbox import Mailbox, start_smtp_server

COLLECTION = ROOT / "docs" / "postman" / "warden.postman_collection.json"
ENVIRONMENT = ROOT / "docs" / "postman" / "warden.local.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
ADMIN_EMAIL = "admin@example.com"
# The collection logs in, registers and changes passwords more often in one minute, from one
# address, than the production limits allow (RATELIMIT_LOGIN 10/min, RATELIMIT_REGISTER 5/min,
# RATELIMIT_PASSWORD and RATELIMIT_EMAIL 5/min). Lift them for this run only; everything else is
# the production configuration. The login backoff keeps its defaults: the collection fails at
# most one login per account.
HIGH_LIMIT = "10000 per minute"
RATE_LIMITS = {
    name: HIGH_LIMIT
    for name in (
        "RATELIMIT_DEFAULT",
        "RATELIMIT_LOGIN",
        "RATELIMIT_REGISTER",
        "RATELIMIT_REFRESH",
        "RATELIMIT_PASSWORD",
        "RATELIMIT_EMAIL",
    )
}


def libpq_url(raw: str) -> str:
    """A URL psycopg accepts: Heroku's postgres:// and SQLAlchemy's +psycopg forms too."""
    parts = urlsplit(raw)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"postman: TEST_DATABASE_URL must be a PostgreSQL URL, got {raw!r}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(url: str, name: str) -> str:
    """The same server URL naming another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def create_database(server_url: str, name: str) -> None:
    """Create an empty database on the server."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server_url: str, name: str) -> None:
    """Drop the database, disconnecting whoever still uses it."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_admin(env: dict[str, str], email: str, password: str) -> None:
    """Create the admin account with the flask command, password on stdin."""
    result = subprocess.run(
        [str(BIN / "flask"), "users", "create-admin", email, "--password-stdin"],
        cwd=ROOT,
        env=env,
        input=password.encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise SystemExit(f"postman: flask users create-admin failed:\n{output}")


def migrate(env: dict[str, str]) -> None:
    """Run the migrations (``flask db upgrade``) on the new database."""
    result = subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise SystemExit(f"postman: flask db upgrade failed:\n{output}")


def serve_mailbox(mailbox: Mailbox) -> ThreadingHTTPServer:
    """Serve ``GET /token?to=…&subject=…`` on loopback: the link token of a delivered mail."""
    # The collection's "(mailed token)" requests read the one-time token of a verification,
    # reset or email-change link from here (as mailboxUrl). A lookup waits up to 15 s for the
    # worker to deliver the mail, and answers 404 naming the mails that did arrive otherwise.

    class Handler(BaseHTTPRequestHandler):
        """Answers the token lookups."""

        def do_GET(self) -> None:
            """Wait for the mail and answer its token as JSON."""
            query = parse_qs(urlsplit(self.path).query)
            to, subject = query.get("to", [""])[0], query.get("subject", [""])[0]
            try:
                received = mailbox.wait_for(to, subject, timeout=15)
                status = 200
                body = {"to": received.to, "subject": received.subject, "token": received.token}
            except AssertionError as exc:  # no such mail, or no token in it
                status, body = 404, {"detail": str(exc)}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep newman's output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="mailbox-http", daemon=True).start()
    return server


def newman_command(
    base_url: str, mailbox_url: str, admin_password: str, extra: list[str]
) -> list[str]:
    """The newman command line for this deployment."""
    return [
        str(NEWMAN),
        "run",
        str(COLLECTION.relative_to(ROOT)),
        "-e",
        str(ENVIRONMENT.relative_to(ROOT)),
        "--env-var",
        f"baseUrl={base_url}",
        "--env-var",
        f"mailboxUrl={mailbox_url}",
        "--env-var",
        f"adminEmail={ADMIN_EMAIL}",
        "--env-var",
        f"adminPassword={admin_password}",
        "--timeout-request",
        "30000",
        *extra,
    ]


def report_mail(mailbox: Mailbox, timeout: float = 10.0, settle: float = 1.0) -> None:
    """Say how many mails the worker delivered to the sink, once delivery has settled."""
    deadline = time.monotonic() + timeout
    count, since = len(mailbox.messages()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(mailbox.messages())
        if now != count:
            count, since = now, time.monotonic()
        elif count and time.monotonic() - since >= settle:
            break
    subjects = sorted({message.subject for message in mailbox.messages()})
    print(f"postman: the worker delivered {count} mail(s) to the SMTP sink: {subjects}")


def stop_on_sigterm() -> None:
    """Turn SIGTERM (a cancelled CI job) into SystemExit, so the cleanup below still runs."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(extra: list[str]) -> int:
    """Start the service, run the collection, stop; return newman's exit code."""
    if not NEWMAN.exists():
        print("postman: node_modules/.bin/newman is missing; run `npm ci` first", file=sys.stderr)
        return 2
    stop_on_sigterm()
    started = time.monotonic()
    server_url = libpq_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL)
    name = f"warden_postman_{uuid.uuid4().hex[:10]}"
    redis_url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    admin_password = secrets.token_urlsafe(24)
    cleanup = contextlib.ExitStack()  # undone in reverse order, whatever happens
    try:
        cleanup.callback(lambda: print(f"postman: done in {time.monotonic() - started:.1f} s"))
        redis = Redis.from_url(redis_url)
        cleanup.callback(redis.close)
        redis.flushdb()
        cleanup.callback(redis.flushdb)
        create_database(server_url, name)
        cleanup.callback(drop_database, server_url, name)
        controller, mailbox = start_smtp_server()
        cleanup.callback(controller.stop)
        mailbox_http = serve_mailbox(mailbox)
        cleanup.callback(mailbox_http.server_close)
        cleanup.callback(mailbox_http.shutdown)
        mailbox_url = f"http://127.0.0.1:{mailbox_http.server_address[1]}"
        folder = Path(tempfile.mkdtemp(prefix="warden-postman-"))
        passed = False

        def remove_logs() -> None:
            if passed:  # a failed run keeps the server logs for a look
                shutil.rmtree(folder, ignore_errors=True)

        cleanup.callback(remove_logs)
        env = production_env(
            with_database(server_url, name),
            SECRET_KEY=secrets.token_hex(20),
            JWT_SECRET_KEY=secrets.token_hex(20),
            REDIS_URL=redis_url,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(controller.port),
            MAIL_USE_TLS="false",
            FRONTEND_URL="http://localhost:3000",
            HOST="127.0.0.1",
            WEB_CONCURRENCY="2",
            BCRYPT_ROUNDS="4",
            **RATE_LIMITS,
        )
        migrate(env)
        deployment = Deployment(env=env, folder=folder)
        # gunicorn.conf.py keeps the metrics of the web workers here; nobody else removes it.
        metrics = Path(tempfile.gettempdir()) / f"warden-prometheus-{deployment.port}"
        cleanup.callback(shutil.rmtree, metrics, ignore_errors=True)
        cleanup.callback(deployment.stop_all)
        deployment.start("web")
        deployment.start("worker")
        create_admin(env, ADMIN_EMAIL, admin_password)  # while gunicorn boots
        deployment.wait_ready()
        print(f"postman: Warden is ready at {deployment.base}; logs in {folder}", flush=True)
        command = newman_command(deployment.base, mailbox_url, admin_password, extra)
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        report_mail(mailbox)
        passed = code == 0
        if not passed:
            print(deployment.logs()[-8000:], file=sys.stderr)
            print(f"postman: newman failed ({code}); the server logs are kept in {folder}")
        return code
    finally:
        cleanup.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
