"""Sign-in with an authenticator app against the bcrypt bound: ``python bench/totp_login.py``.

A scenario of its own beside ``run.py``. It deploys one Warden as ``run.py`` does
(production mode, the Procfile web line, ``BCRYPT_ROUNDS=12``, limits lifted), seeds users
and gives half of them an authenticator app, then runs interleaved rounds of two loads,
each from ``--clients`` clients in a closed loop (``bench/closed_loop.py``) for
``--duration`` seconds:

- ``password``: ``POST /auth/login`` of users without a factor, answered with tokens;
- ``totp``: ``POST /auth/login`` (202, a challenge), then ``POST /auth/login/second-factor``
  with the code pyotp computes, answered with tokens.

A sign-in counts when it ends in tokens; each TOTP user signs in once (a code works once
per time step). Each run is compared with the bcrypt bound timed on each side of it, as
in ``run.py`` (workers / verify time), and the TOTP rate with the password rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp

from bench import closed_loop, machine, stack
from bench.closed_loop import Client
from bench.run import exclusive, measure_bcrypt, say

PREFIX = "totp"
SECRET = pyotp.random_base32()


def enrol(warden: stack.Warden, user_ids: Sequence[uuid.UUID]) -> None:
    """Give each user a confirmed authenticator app with SECRET, sealed as Warden seals it."""
    from sqlalchemy import insert

    from project.extensions import db
    from project.models import TotpFactor
    from project.models.types import utcnow
    from project.services.factors import secret_box

    with warden.app.app_context():
        sealed = secret_box().seal(SECRET)
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "secret_encrypted": sealed,
                "created_at": now,
                "confirmed_at": now,
            }
            for user_id in user_ids
        ]
        db.session.execute(insert(TotpFactor), rows)
        db.session.commit()
        db.session.remove()


def password_sign_in(client: Client, email: str) -> bool:
    """One password login; whether it gave tokens."""
    status, _ = client.post("/api/v1/auth/login", {"email": email, "password": stack.SEED_PASSWORD})
    return status == 200


def totp_sign_in(client: Client, email: str) -> bool:
    """Password, then the code on the challenge; whether it gave tokens."""
    status, body = client.post(
        "/api/v1/auth/login", {"email": email, "password": stack.SEED_PASSWORD}
    )
    if status != 202:
        return False
    code = pyotp.TOTP(SECRET).now()
    status, _ = client.post(
        "/api/v1/auth/login/second-factor", {"challenge": body["challenge"], "code": code}
    )
    return status == 200


def drive(
    sign_in: Callable[[Client, str], bool],
    base: str,
    emails: list[str],
    clients: int,
    seconds: float,
) -> dict[str, float]:
    """Run ``clients`` clients signing in with fresh emails for ``seconds``; the figures."""
    # Far above what cost 12 allows on a few cores: a run never runs out of users.
    if len(emails) < seconds * 20:
        raise SystemExit("too few users left for another run: raise --users")
    result = closed_loop.drive(
        base, lambda client: sign_in(client, emails.pop()), clients=clients, seconds=seconds
    )
    return {
        "sign_ins": result.ok,
        "failed": result.status_errors + result.errors,
        "per_s": result.rps,
        "p50_ms": result.p50_ms,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Deploy, seed, measure, print and write bench/results/totp_login.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--users", type=int, default=2000, help="of each kind")
    parser.add_argument("--port", type=int, default=0, help="Warden's port (0: any free one)")
    parser.add_argument("--lock-wait", type=float, default=900)
    args = parser.parse_args(argv)
    stack.check_services()
    with exclusive(args.lock_wait), stack.sink() as box:
        warden = stack.start_warden(
            label="totp",
            root=stack.HARNESS_ROOT,
            box=box,
            redis_offset=0,
            bcrypt_rounds=args.bcrypt_rounds,
            workers=args.workers,
        )
        if args.port:
            warden.server.port = args.port
        try:
            warden.release_and_seed(2 * args.users, PREFIX)
            users = warden.active_seeded(PREFIX, 2 * args.users)
            with_app, without = users[: args.users], users[args.users :]
            enrol(warden, [row.id for row in with_app])
            warden.server.start()
            warden.server.wait_ready("/health/ready")
            base = warden.server.base
            pools = {
                "password": [row.email for row in without],
                "totp": [row.email for row in with_app],
            }
            loads = {"password": password_sign_in, "totp": totp_sign_in}
            client = Client(base, 0)
            assert totp_sign_in(client, pools["totp"].pop()), "a TOTP sign-in failed"
            assert password_sign_in(client, pools["password"].pop()), "a password sign-in failed"
            client.close()
            rows: list[dict[str, Any]] = []
            for round_no in range(1, args.rounds + 1):
                order = ["password", "totp"] if round_no % 2 else ["totp", "password"]
                for kind in order:
                    quiet = machine.wait_quiet(0.15, 60, say)
                    before = measure_bcrypt(args.bcrypt_rounds, args.workers)["bound_rps"]
                    figures = drive(loads[kind], base, pools[kind], args.clients, args.duration)
                    after = measure_bcrypt(args.bcrypt_rounds, args.workers)["bound_rps"]
                    bound = (before + after) / 2
                    share = figures["per_s"] / bound
                    rows.append(
                        {"round": round_no, "kind": kind, "bound_rps": bound,
                         "bound_before": before, "bound_after": after, "busy": quiet,
                         **figures, "share_of_bound": share}
                    )  # fmt: skip
                    say(
                        f"round {round_no} {kind:>8}: {figures['per_s']:.2f} sign-ins/s "
                        f"(p50 {figures['p50_ms']:.0f} ms, {figures['failed']} failed), "
                        f"bound {before:.2f}/s before, {after:.2f}/s after: {share:.3f}"
                    )
        finally:
            warden.stop()
    summary = {
        kind: statistics.median(r["share_of_bound"] for r in rows if r["kind"] == kind)
        for kind in ("password", "totp")
    }
    ratios = [
        next(r["per_s"] for r in rows if r["round"] == n and r["kind"] == "totp")
        / next(r["per_s"] for r in rows if r["round"] == n and r["kind"] == "password")
        for n in range(1, args.rounds + 1)
    ]
    summary["totp_to_password"] = statistics.median(ratios)
    say(
        f"median share of the bcrypt bound: password {summary['password']:.3f}, "
        f"TOTP {summary['totp']:.3f}; TOTP / password {summary['totp_to_password']:.3f}"
    )
    document = {"settings": vars(args), "rounds": rows, "summary": summary}
    path = stack.write_result("totp_login", document)
    say(f"wrote {path}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
