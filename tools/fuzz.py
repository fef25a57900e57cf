"""make fuzz: run schemathesis against a live Warden (gunicorn, PostgreSQL, Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live import BIN, ROOT
from tools.stack import lifted_rate_limits, production_stack

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# Fuzzing sends thousands of requests, many of them failed logins, from one address.
OVERRIDES = {
    **lifted_rate_limits("1000000 per minute"),
    "LOGIN_FREE_FAILURES_PER_IP": "1000000",
    "LOGIN_FREE_FAILURES_PER_ACCOUNT": "1000000",
}


def main() -> int:
    """Start the service, run schemathesis, stop; exit with schemathesis' status."""
    with production_stack(
        "fuzz", redis_db=15, admin_email="fuzz-admin@example.com", overrides=OVERRIDES
    ) as stack:
        base = stack.deployment.base
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tools.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
            "WARDEN_URL": base,
            "WARDEN_ADMIN_EMAIL": stack.admin_email,
            "WARDEN_ADMIN_PASSWORD": stack.admin_password,
        }
        command = [
            str(BIN / "schemathesis"),
            "run",
            f"{base}/api/v1/openapi.json",
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
        code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        if code != 0:
            stack.failed()
        return code


if __name__ == "__main__":
    sys.exit(main())
