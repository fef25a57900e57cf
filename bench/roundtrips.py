"""Count the network round trips one request makes to Redis and to PostgreSQL.

    .venv/bin/python bench/roundtrips.py                          # this checkout
    .venv/bin/python bench/roundtrips.py --target before=/tmp/before --target after=/tmp/after

Unlike req/s on a shared machine, these counts are exact and repeatable, which makes them the
plainest evidence of what a change saves. For each checkout (in a child process, so its own
`project` package is the one imported) it builds the production app in-process on a fresh
PostgreSQL database and Redis database, sends requests through Flask's test client, and
counts:

- Redis: commands sent (a pipeline counts once), by wrapping redis-py's client;
- PostgreSQL: statements the server received, from its own log (`log_statement = all` is
  set on the throwaway database only): every round trip, BEGIN, COMMIT/ROLLBACK and the
  pool's pre-ping included. The log is read from BENCH_PG_LOG, else the newest
  /var/log/postgresql/postgresql-*-main.log (Debian's); unreadable, the count is left out.

Writes bench/results/roundtrips.json (or --output NAME) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HARNESS_ROOT = Path(__file__).resolve().parent.parent
REDIS_OFFSET = 7  # BENCH_REDIS_URL's database minus 7: away from a concurrent bench run


def server_log() -> Path | None:
    """PostgreSQL's log file, when this process can read it."""
    configured = os.environ.get("BENCH_PG_LOG")
    candidates = (
        [Path(configured)]
        if configured
        else sorted(
            Path("/var/log/postgresql").glob("postgresql-*-main.log"),
            key=lambda path: path.stat().st_mtime,
        )[-1:]
    )
    for path in candidates:
        if path.is_file() and os.access(path, os.R_OK):
            return path
    return None


def child(root: Path, requests: int) -> dict[str, Any]:
    """Measure one checkout; ``project`` is imported from ``root``."""
    sys.path.insert(0, str(root))
    if not (root / "bench" / "stack.py").exists():
        sys.path.append(str(HARNESS_ROOT))
    import redis.client
    from sqlalchemy import event

    from bench import stack

    counters = {"redis": 0}
    original_execute = redis.client.Redis.execute_command
    original_pipeline = redis.client.Pipeline.execute

    def count_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(self, redis.client.Pipeline):
            counters["redis"] += 1
        return original_execute(self, *args, **kwargs)

    def count_pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        counters["redis"] += 1
        return original_pipeline(self, *args, **kwargs)

    redis.client.Redis.execute_command = count_command  # type: ignore[method-assign]
    redis.client.Pipeline.execute = count_pipeline  # type: ignore[method-assign]

    results: dict[str, Any] = {}
    with stack.sink() as box:
        warden = stack.start_warden(
            label="rt", root=root, box=box, redis_offset=REDIS_OFFSET, bcrypt_rounds=4, workers=1
        )
        try:
            warden.release_and_seed(200, "bench")
            users = [row.id for row in warden.active_seeded("bench", 200)]
            emails = [row.email for row in warden.active_seeded("bench", 200)]
            pairs = warden.mint_sessions(users, 3 * requests + 50)
            app = warden.app
            from project.extensions import db

            log = server_log()
            dbname = warden.database.name
            warden.database.execute(f"ALTER DATABASE \"{dbname}\" SET log_statement = 'all'")
            statements: list[str] = []
            with app.app_context():
                db.engine.dispose()  # new connections, which log every statement

                @event.listens_for(db.engine, "before_cursor_execute")
                def remember(*args: Any) -> None:
                    statements.append(" ".join(str(args[2]).split())[:110])

            client = app.test_client()

            def logged(start: int) -> list[str]:
                if log is None:
                    return []
                with log.open(errors="replace") as handle:
                    handle.seek(start)
                    lines = handle.read().splitlines()
                marker = f"@{dbname} LOG:  "
                return [
                    line.split(marker, 1)[1]
                    for line in lines
                    if marker in line and ("LOG:  statement: " in line or "LOG:  execute " in line)
                ]

            def measure(name: str, send: Callable[[int], Any], count: int) -> None:
                start = log.stat().st_size if log else 0
                before_redis = counters["redis"]
                last_start = 0
                for index in range(count):
                    if index == count - 1:
                        last_start = log.stat().st_size if log else 0
                        statements.clear()
                    response = send(index)
                    assert response.status_code < 300, (name, response.status_code, response.json)
                time.sleep(0.2)  # let the server finish writing its log
                results[name] = {
                    "requests": count,
                    "redis_round_trips": round((counters["redis"] - before_redis) / count, 2),
                    "postgres_round_trips": round(len(logged(start)) / count, 2) if log else None,
                    "postgres_statements_of_last_request": [
                        " ".join(line.split())[:120] for line in logged(last_start)
                    ],
                    "orm_statements_of_last_request": list(statements),
                }

            def bearer(token: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {token}"}

            access = [pair.access_token for pair in pairs[:requests]]
            cold = [pair.access_token for pair in pairs[requests : 2 * requests]]
            refresh = [pair.refresh_token for pair in pairs[2 * requests :]]
            admin_token = client.post(
                "/api/v1/auth/login",
                json={"email": stack.ADMIN_EMAIL, "password": stack.ADMIN_PASSWORD},
            ).json["access_token"]
            for token in access:  # warm: the session marker and the user copy are in Redis
                client.get("/api/v1/users/me", headers=bearer(token))
            client.get("/api/v1/users?limit=20", headers=bearer(admin_token))
            measure(
                "users_me (warm)",
                lambda i: client.get("/api/v1/users/me", headers=bearer(access[i])),
                requests,
            )
            measure(
                "users_me (first of a session)",
                lambda i: client.get("/api/v1/users/me", headers=bearer(cold[i])),
                requests,
            )
            measure(
                "refresh",
                lambda i: client.post("/api/v1/auth/refresh", headers=bearer(refresh[i])),
                requests,
            )
            measure(
                "admin_list",
                lambda i: client.get("/api/v1/users?limit=20", headers=bearer(admin_token)),
                requests,
            )
            measure("health_ready", lambda i: client.get("/health/ready"), requests)
            measure(
                "login",
                lambda i: client.post(
                    "/api/v1/auth/login",
                    json={"email": emails[i % len(emails)], "password": stack.SEED_PASSWORD},
                ),
                20,
            )
            measure(
                "register",
                lambda i: client.post(
                    "/api/v1/auth/register",
                    json={"email": f"rt{i}@bench.example", "password": "violet orbit staple 9931"},
                ),
                20,
            )
        finally:
            warden.stop()
    return results


def table(document: dict[str, Any]) -> str:
    """Round trips per request, one column pair per checkout."""
    labels = list(document["targets"])
    names = list(next(iter(document["targets"].values())))
    header = f"{'request':<32}" + "".join(f"{label + ' redis/pg':>22}" for label in labels)
    lines = [header, "-" * len(header)]
    for name in names:
        cells = ""
        for label in labels:
            entry = document["targets"][label][name]
            postgres = entry["postgres_round_trips"]
            cells += f"{entry['redis_round_trips']:>14.2f} "
            cells += f"{'?' if postgres is None else f'{postgres:.2f}':>7}"
        lines.append(f"{name:<32}{cells}")
    lines.append("round trips per request: Redis commands (a pipeline counts once) and")
    lines.append("PostgreSQL statements received (BEGIN, pre-ping, queries, COMMIT/ROLLBACK)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each --target (default: this checkout) in a child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--output", default="roundtrips")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child), args.requests)))
        return 0
    sys.path.insert(0, str(HARNESS_ROOT))
    from bench import stack

    targets = dict(item.partition("=")[::2] for item in args.target) or {
        "warden": str(HARNESS_ROOT)
    }
    document: dict[str, Any] = {"requests": args.requests, "targets": {}}
    for label, path in targets.items():
        try:
            document["targets"][label] = stack.run_child(
                __file__, path, "--requests", str(args.requests)
            )
        except stack.BenchError as exc:
            print(exc, file=sys.stderr)
            return 1
    out = stack.write_result(args.output, document)
    print(table(document))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
