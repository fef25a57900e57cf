"""Retention at scale: clear a backlog while login and /users/me run (make bench-retention).

Seeds ``--size`` sessions (two thirds ended long past SESSION_RETENTION_DAYS), as many
audit events spread over 24 months (COPY, into the plain table of revision 0005, which
revision 0009 then partitions by month) and a tenth as many one-time tokens; then runs
``flask retention run`` while wrk drives login and /users/me in turns, and compares their
p99 latency with rounds run while the job is paused, in alternation. Reports the time to
clear the backlog, the bytes per row of each table with its indexes, table sizes before,
after and after VACUUM, and Redis memory per session marker and cached user. Writes
results/retention.json.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from redis import Redis

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine, stack
from bench import wrk as wrk_runner
from bench.run import RESULTS, exclusive, say
from tests.live import BIN

ROOT = stack.HARNESS_ROOT
USERS = 1_000
PREFIX = "seed"
DAY = timedelta(days=1)
TARGET_RATIO = 1.5
TABLES = ("sessions", "audit_events", "one_time_tokens")
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131"


def _sessions(count: int, users: Sequence[uuid.UUID], now: datetime) -> Iterator[tuple[Any, ...]]:
    """A third live, a third expired and a third revoked 31 to 180 days ago."""
    for index in range(count):
        ended = now - timedelta(days=31 + index % 150, seconds=index % 86_400)
        kind = index % 3
        expires = now + 20 * DAY if kind != 1 else ended
        yield (
            uuid.uuid4(),
            users[index % len(users)],
            uuid.uuid4().hex,
            expires - 30 * DAY,
            expires - 30 * DAY,
            expires,
            AGENT,
            f"198.51.100.{index % 250}",
            ended if kind == 2 else None,
        )


def _events(count: int, users: Sequence[uuid.UUID], now: datetime) -> Iterator[tuple[Any, ...]]:
    """Login events spread evenly over the last 24 months."""
    span = 730 * 86_400
    for index in range(count):
        user = users[index % len(users)]
        yield (
            uuid.uuid4(),
            now - timedelta(seconds=span * index / count),
            "login.succeeded",
            user,
            user,
            f"203.0.113.{index % 250}",
            AGENT,
            uuid.uuid4().hex,
            json.dumps({"session_id": str(uuid.uuid4())}),
        )


def _tokens(count: int, users: Sequence[uuid.UUID], now: datetime) -> Iterator[tuple[Any, ...]]:
    """Reset tokens: a third usable, two thirds used or expired 8 to 60 days ago."""
    for index in range(count):
        spent = now - timedelta(days=8 + index % 52)
        kind = index % 3
        expires = now + DAY if kind != 1 else spent
        yield (
            uuid.uuid4(),
            uuid.uuid4().hex + uuid.uuid4().hex,
            "reset_password",
            users[index % len(users)],
            "{}",
            expires - DAY,
            expires,
            spent if kind == 2 else None,
        )


COPY = {
    "sessions": "id, user_id, refresh_jti, created_at, last_used_at, expires_at, user_agent, ip,"
    " revoked_at",
    "audit_events": "id, occurred_at, event_type, actor_id, user_id, ip, user_agent, request_id,"
    " details",
    "one_time_tokens": "id, token_hash, purpose, user_id, data, created_at, expires_at, used_at",
}


def copy_rows(url: str, table: str, rows: Iterator[tuple[Any, ...]]) -> float:
    """COPY rows into ``table``; return the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute("SET statement_timeout = 0")
        statement = f"COPY {table} ({COPY[table]}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    return time.perf_counter() - started


def sizes(database: stack.Database) -> dict[str, dict[str, int]]:
    """Rows and bytes (heap, TOAST and indexes) per table; partitions summed."""
    found = {}
    for table in TABLES:
        # pg_partition_tree lists a partitioned table's parts, and nothing for a plain one.
        total = database.scalar(
            "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))"
            " FROM pg_partition_tree(:t)), pg_total_relation_size(:t))",
            t=table,
        )
        found[table] = {
            "rows": int(database.scalar(f"SELECT count(*) FROM {table}")),  # noqa: S608
            "bytes": int(total or 0),
        }
    return found


def reusable(database: stack.Database) -> dict[str, int]:
    """Bytes VACUUM has marked free for new rows of each table (pg_freespacemap)."""
    database.execute("CREATE EXTENSION IF NOT EXISTS pg_freespacemap")
    found = {}
    for table in TABLES:
        parts = [table]
        if database.scalar("SELECT relkind FROM pg_class WHERE relname = :t", t=table) == "p":
            parts = [
                row.relid
                for row in database.rows(
                    "SELECT relid::text FROM pg_partition_tree(:t) WHERE isleaf", t=table
                )
            ]
        found[table] = sum(
            int(database.scalar("SELECT coalesce(sum(avail), 0) FROM pg_freespace(:t)", t=part))
            for part in parts
        )
    return found


def redis_budget(url: str) -> dict[str, Any]:
    """Average MEMORY USAGE of the session markers and cached users the load left."""
    client = Redis.from_url(url)
    result: dict[str, Any] = {}
    for name, pattern in (("session_marker", "warden:session:*"), ("user_copy", "warden:user:*")):
        usage = [client.memory_usage(key) or 0 for key in client.scan_iter(pattern, count=1000)]
        result[name] = {
            "keys": len(usage),
            "bytes_each": round(statistics.mean(usage)) if usage else None,
        }
    result["used_memory"] = int(client.info("memory")["used_memory"])
    return result


def prepare(warden: stack.Warden, size: int) -> dict[str, Any]:
    """Schema at 0005, users and events, the upgrade to head, then sessions and tokens."""
    facts: dict[str, Any] = {}
    stack.run_flask(ROOT, warden.env, ["db", "upgrade", "0005"])
    stack.run_flask(
        ROOT,
        warden.env,
        ["users", "create-admin", stack.ADMIN_EMAIL, "--password-stdin"],
        stdin=stack.ADMIN_PASSWORD + "\n",
    )
    stack.run_flask(
        ROOT,
        warden.env,
        [
            "seed-users",
            str(USERS),
            "--password",
            stack.SEED_PASSWORD,
            "--prefix",
            PREFIX,
            "--force",
        ],
    )
    users = [row.id for row in warden.database.rows("SELECT id FROM users")]
    random.Random(7).shuffle(users)  # noqa: S311 - an order, not a secret
    now = datetime.now(UTC)
    url = warden.database.url
    facts["copy_events_s"] = round(copy_rows(url, "audit_events", _events(size, users, now)), 1)
    say(f"  {size:,} audit events copied in {facts['copy_events_s']} s")
    started = time.perf_counter()
    stack.run_flask(ROOT, warden.env, ["db", "upgrade"])
    facts["migration_0009_s"] = round(time.perf_counter() - started, 1)
    say(f"  migration 0009 partitioned them in {facts['migration_0009_s']} s")
    facts["copy_sessions_s"] = round(copy_rows(url, "sessions", _sessions(size, users, now)), 1)
    tokens = max(size // 10, 1)
    facts["copy_tokens_s"] = round(
        copy_rows(url, "one_time_tokens", _tokens(tokens, users, now)), 1
    )
    say(f"  {size:,} sessions and {tokens:,} tokens copied")
    warden.database.execute("VACUUM ANALYZE")
    return facts


def load_round(warden: stack.Warden, wrk: str, inputs: dict[str, list[str]], args: Any) -> dict:
    """One wrk run of login, then one of /users/me; their p99 (ms) and rates."""
    load = wrk_runner.Load(args.threads, args.connections, args.duration)
    found = {}
    for key, path in (("login", "/api/v1/auth/login"), ("users_me", "/api/v1/users/me")):
        result = wrk_runner.run(wrk, warden.server.base + path, load, *inputs[key])
        found[key] = {"p99_ms": result.p99_ms, "rps": round(result.rps, 1), "non_2xx": 0}
        found[key]["non_2xx"] = result.status_errors + result.errors
    return found


def _median(rounds: list[dict], key: str) -> float:
    return round(float(statistics.median(r[key]["p99_ms"] for r in rounds)), 2)


def run(args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    """The whole measurement; returns the result document."""
    document: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(wrk),
        "settings": {
            "size": args.size,
            "batch_size": args.batch_size,
            "batch_pause_ms": args.pause_ms,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "duration_s": args.duration,
            "ratio": "median over pairs of (p99 during / p99 in the paused round after)",
            "web_concurrency": args.workers,
            "bcrypt_rounds": args.bcrypt_rounds,
        },
    }
    extra = {
        "RETENTION_BATCH_SIZE": str(args.batch_size),
        "RETENTION_BATCH_PAUSE_MS": str(args.pause_ms),
        "LOG_LEVEL": "INFO",
        # The access tokens minted for the load must outlive a long run.
        "ACCESS_TOKEN_TTL": "86400",
    }
    with stack.sink(keep_logs=args.keep_logs) as box:
        warden = stack.start_warden(
            label="retention",
            root=ROOT,
            box=box,
            redis_offset=0,
            bcrypt_rounds=args.bcrypt_rounds,
            workers=args.workers,
            extra_env=extra,
        )
        try:
            say(f"database {warden.database.name}")
            document["seed"] = prepare(warden, args.size)
            before = sizes(warden.database)
            document["bytes_per_row"] = {
                table: round(value["bytes"] / value["rows"]) for table, value in before.items()
            }
            warden.server.start()
            warden.server.wait_ready("/health/ready")
            sample = warden.active_seeded(PREFIX, 200, spread=True)
            minted = warden.mint_sessions([row.id for row in sample], len(sample))
            folder = box.folder
            emails = stack.write_lines(folder / "emails.txt", [row.email for row in sample])
            access = stack.write_lines(folder / "access.txt", [p.access_token for p in minted])
            inputs = {
                "login": ["login", str(emails), stack.SEED_PASSWORD],
                "users_me": ["bearer", str(access)],
            }
            # Rounds with and without the job alternate (the job is paused with SIGSTOP
            # between batches' statements for the rounds without), so a shared machine's
            # drift weighs on both sides alike; ratios are taken per pair.
            quiet = [load_round(warden, wrk, inputs, args)]
            say(f"  without retention: {json.dumps(quiet[-1])}")
            log = folder / "retention.log"
            paused = 0.0
            started = time.perf_counter()
            during: list[dict] = []
            pairs: list[tuple[dict, dict]] = []
            with log.open("wb") as output:
                job = subprocess.Popen(  # noqa: S603 - our own flask command
                    [str(BIN / "flask"), "retention", "run"],
                    cwd=ROOT,
                    env=warden.env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
                while job.poll() is None:
                    during.append(load_round(warden, wrk, inputs, args))
                    say(f"  during retention: {json.dumps(during[-1])}")
                    if job.poll() is not None or len(during) > args.pairs:
                        continue
                    job.send_signal(signal.SIGSTOP)
                    stopped = time.perf_counter()
                    quiet.append(load_round(warden, wrk, inputs, args))
                    say(f"  without retention: {json.dumps(quiet[-1])}")
                    pairs.append((during[-1], quiet[-1]))
                    job.send_signal(signal.SIGCONT)
                    paused += time.perf_counter() - stopped
                job.wait()
            cleared = time.perf_counter() - started - paused
            if job.returncode != 0:
                raise stack.BenchError(f"retention failed:\n{log.read_text()[-3000:]}")
            say(f"  backlog cleared in {cleared:.1f} s of running")
            document["redis"] = redis_budget(warden.redis)
            after = sizes(warden.database)
            started = time.perf_counter()
            warden.database.execute("VACUUM ANALYZE")
            vacuum_s = time.perf_counter() - started
            vacuumed = sizes(warden.database)
            document["retention"] = {
                "cleared_s": round(cleared, 1),
                "output": [line for line in log.read_text().splitlines() if "removed" in line],
                "vacuum_s": round(vacuum_s, 1),
                "reusable_after_vacuum_bytes": reusable(warden.database),
            }
            document["sizes"] = {"before": before, "after": after, "after_vacuum": vacuumed}
            document["max_connections"] = int(warden.database.scalar("SHOW max_connections"))
            pairs = pairs or [(during[0], quiet[0])]
            document["latency"] = {
                key: {
                    "p99_without_ms": _median([q for _d, q in pairs], key),
                    "p99_during_ms": _median([d for d, _q in pairs], key),
                    "ratio": round(
                        statistics.median(
                            d[key]["p99_ms"] / q[key]["p99_ms"]
                            for d, q in pairs
                            if q[key]["p99_ms"] and d[key]["p99_ms"]  # a round with no answer
                        ),
                        2,
                    ),
                    "target": TARGET_RATIO,
                }
                for key in ("login", "users_me")
            }
            document["rounds"] = {"without": quiet, "during": during}
        finally:
            warden.stop()
    return document


def table(document: dict[str, Any]) -> str:
    """The figures as text."""
    lines = [f"size {document['settings']['size']:,}: {json.dumps(document['seed'])}"]
    lines.append(f"bytes per row with indexes: {json.dumps(document['bytes_per_row'])}")
    lines.append(f"backlog cleared in {document['retention']['cleared_s']} s")
    free = document["retention"]["reusable_after_vacuum_bytes"]
    lines.append(
        "free for reuse after VACUUM: "
        + ", ".join(f"{name} {value / 2**20:.0f} MB" for name, value in free.items())
    )
    for stage, found in document["sizes"].items():
        lines.append(
            f"{stage:>13}: "
            + ", ".join(
                f"{name} {value['rows']:,} rows {value['bytes'] / 2**20:.0f} MB"
                for name, value in found.items()
            )
        )
    for key, value in document["latency"].items():
        lines.append(
            f"{key}: p99 {value['p99_without_ms']} ms without, {value['p99_during_ms']} ms "
            f"during: ratio {value['ratio']} (target {TARGET_RATIO})"
        )
    lines.append(f"redis: {json.dumps(document['redis'])}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="sessions and events")
    parser.add_argument("--batch-size", type=int, default=1000, help="RETENTION_BATCH_SIZE")
    parser.add_argument("--pause-ms", type=int, default=100, help="RETENTION_BATCH_PAUSE_MS")
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    parser.add_argument(
        "--pairs", type=int, default=8, help="rounds paused between rounds during the job"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="BCRYPT_ROUNDS")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs")
    parser.add_argument("--lock-wait", type=float, default=3600, help="wait for another bench")
    parser.add_argument("--output", default="retention", help="results file name")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        wrk = stack.require_wrk()
        stack.check_services()
        with exclusive(args.lock_wait):
            document = run(args, wrk)
    except stack.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.output}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table(document))
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
