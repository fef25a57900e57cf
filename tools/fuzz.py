"""make fuzz: run schemathesis against a live Warden (gunicorn, PostgreSQL, Redis)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis import Redis
from sqlalchemy import create_engine, make_url, text

from config import database_url
from tests.live import BIN, ROOT, Deployment, production_env
from tests.mailbox import start_smtp_server

ADMIN_EMAIL = "fuzz-admin@example.com"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# Fuzzing sends thousands of requests from one address: lift the limits for the run.
HIGH_LIMIT = "1000000 per minute"


def main() -> int:
    """Start the service, run schemathesis, stop; exit with schemathesis' status."""
    admin_url = make_url(
        database_url(
            os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
        )
    )
    name = f"warden_fuzz_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    redis_url = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
    Redis.from_url(redis_url).flushdb()
    controller, _mailbox = start_smtp_server()
    admin_password = secrets.token_urlsafe(16)
    folder = Path(tempfile.mkdtemp(prefix="warden-fuzz-"))
    env = production_env(
        admin_url.set(database=name).render_as_string(hide_password=False),
        REDIS_URL=redis_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(controller.port),
        MAIL_USE_TLS="false",
        FRONTEND_URL="http://localhost:3000",
        RATELIMIT_DEFAULT=HIGH_LIMIT,
        RATELIMIT_LOGIN=HIGH_LIMIT,
        RATELIMIT_REGISTER=HIGH_LIMIT,
        RATELIMIT_REFRESH=HIGH_LIMIT,
        RATELIMIT_PASSWORD=HIGH_LIMIT,
        RATELIMIT_EMAIL=HIGH_LIMIT,
        LOGIN_FREE_FAILURES_PER_IP="1000000",
        LOGIN_FREE_FAILURES_PER_ACCOUNT="1000000",
    )
    deployment = Deployment(env=env, folder=folder)
    try:
        deployment.release()
        subprocess.run(
            [str(BIN / "flask"), "users", "create-admin", ADMIN_EMAIL, "--password-stdin"],
            cwd=ROOT,
            env=env,
            input=admin_password.encode(),
            check=True,
            capture_output=True,
        )
        deployment.start("web")
        deployment.start("worker")
        deployment.wait_ready()
        fuzz_env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tools.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
            "WARDEN_URL": deployment.base,
            "WARDEN_ADMIN_EMAIL": ADMIN_EMAIL,
            "WARDEN_ADMIN_PASSWORD": admin_password,
        }
        command = [
            str(BIN / "schemathesis"),
            "run",
            f"{deployment.base}/api/v1/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--mode",
            "all",
            "--max-examples",
            os.environ.get("FUZZ_MAX_EXAMPLES", "30"),
            # One worker: CPython 3.11's ast.parse (used by Hypothesis) is not thread-safe.
            "--workers",
            "1",
            "--seed",
            os.environ.get("FUZZ_SEED", "20261126"),
        ]
        result = subprocess.run(command, cwd=ROOT, env=fuzz_env, check=False)
        if result.returncode != 0:
            print(deployment.logs()[-5000:], file=sys.stderr)
        return result.returncode
    finally:
        deployment.stop_all()
        controller.stop()
        Redis.from_url(redis_url).flushdb()
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
