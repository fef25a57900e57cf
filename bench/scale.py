"""bench/run.py --scale: do latencies hold from 1,000 to 1,000,000 users?

For each size: a fresh database, `flask seed-users N` (timed), VACUUM ANALYZE, Warden under
gunicorn as in the main run. Then a few rounds, each measuring every operation at every size
in turn (the deployments run side by side), and the median of the per-round ratios.
wrk runs with 2 connections (one per worker), so the latencies are service times rather
than time spent queueing behind other requests; the point is the 1M/1K ratio per operation.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, stack
from bench import wrk as wrk_runner
from bench.run import RESULTS, say
from bench.wrk import Load

PREFIX = "seed"
# 100 users at every size from 1,000 up (seed0000500 .. seed0000599): same answer size.
NARROW_PREFIX = "seed00005"
# The brief's example: no user at 1K, 100,000 users (seed0500000..) at 1M. The answers
# differ (an empty page, a full one), so its ratio includes serializing 20 users.
WIDE_PREFIX = "seed05"
# Every seeded user at every size: a full page at both, so only the table's size differs.
ALL_PREFIX = "seed0"
PREFIXES = {"narrow": NARROW_PREFIX, "wide": WIDE_PREFIX, "all": ALL_PREFIX}
TARGET_RATIO = 1.2


@dataclass(frozen=True)
class Operation:
    """One measured request at every size."""

    key: str
    label: str
    slow: bool = False


OPERATIONS = (
    Operation("login", "POST /auth/login", True),
    Operation("users_me", "GET /users/me"),
    Operation("admin_get_by_id", "GET /users/{id} (admin)"),
    Operation("list_first_page", "GET /users?limit=20"),
    Operation("list_deep_page", "GET /users?limit=20&cursor=<middle>"),
    Operation("email_prefix_narrow", f"GET /users?email={NARROW_PREFIX}"),
    Operation("email_prefix_wide", f"GET /users?email={WIDE_PREFIX}"),
    Operation("email_prefix_all", f"GET /users?email={ALL_PREFIX}"),
)


def middle_cursor(warden: stack.Warden, size: int) -> str:
    """The cursor the API would hand out after the row in the middle of the table."""
    from project.schemas.fields import Cursor

    row = warden.database.rows(
        "SELECT created_at, id FROM users ORDER BY created_at, id OFFSET :skip LIMIT 1",
        skip=size // 2,
    )[0]
    return str(Cursor()._serialize((row.created_at, row.id), None, None))


def prepare(
    size: int, args: argparse.Namespace, box: stack.Sink, redis_offset: int
) -> tuple[stack.Warden, dict[str, Any], dict[str, Any]]:
    """Seed a fresh deployment with ``size`` users; return it, the wrk inputs and facts."""
    from bench.run import target_roots

    warden = stack.start_warden(
        label=f"scale{size}",
        root=next(iter(target_roots(args).values())),
        box=box,
        redis_offset=redis_offset,
        bcrypt_rounds=args.bcrypt_rounds,
        workers=args.workers,
    )
    say(f"[{size:,} users] database {warden.database.name}")
    seed_wall = warden.release_and_seed(size, PREFIX)
    found = re.search(r"in ([0-9.]+) s", warden.seed_output)
    started = time.perf_counter()
    warden.database.execute("VACUUM ANALYZE users")
    analyze_s = time.perf_counter() - started
    say(
        f"  seeded in {seed_wall:.1f} s wall ({warden.seed_output}); "
        f"VACUUM ANALYZE {analyze_s:.1f} s"
    )
    warden.server.start()
    warden.server.wait_ready("/health/ready")
    sample = warden.active_seeded(PREFIX, 200, spread=True)
    ids = warden.database.rows("SELECT id FROM users ORDER BY random() LIMIT 1000")
    pairs = warden.mint_sessions([row.id for row in sample], len(sample))
    admin = warden.login(stack.ADMIN_EMAIL, stack.ADMIN_PASSWORD)["access_token"]
    folder = box.folder
    admin_file = stack.write_lines(folder / f"admin-{size}.txt", [admin])
    inputs = {
        "login": (
            "/api/v1/auth/login",
            [
                "login",
                str(stack.write_lines(folder / f"emails-{size}.txt", [r.email for r in sample])),
                stack.SEED_PASSWORD,
            ],
        ),
        "users_me": (
            "/api/v1/users/me",
            [
                "bearer",
                str(
                    stack.write_lines(
                        folder / f"access-{size}.txt", [p.access_token for p in pairs]
                    )
                ),
            ],
        ),
        "admin_get_by_id": (
            "/",
            [
                "paths",
                str(
                    stack.write_lines(
                        folder / f"ids-{size}.txt", [f"/api/v1/users/{row.id}" for row in ids]
                    )
                ),
                admin,
            ],
        ),
        "list_first_page": ("/api/v1/users?limit=20", ["bearer", str(admin_file)]),
        "list_deep_page": (
            f"/api/v1/users?limit=20&cursor={middle_cursor(warden, size)}",
            ["bearer", str(admin_file)],
        ),
    } | {
        f"email_prefix_{name}": (
            f"/api/v1/users?limit=20&email={prefix}",
            ["bearer", str(admin_file)],
        )
        for name, prefix in PREFIXES.items()
    }
    facts = {
        "users": int(warden.database.scalar("SELECT count(*) FROM users")),
        "seed_wall_s": round(seed_wall, 1),
        "seed_command_s": float(found.group(1)) if found else None,
        "vacuum_analyze_s": round(analyze_s, 1),
        "users_table_mb": round(
            int(warden.database.scalar("SELECT pg_total_relation_size('users')")) / 2**20, 1
        ),
    } | {
        f"{name}_prefix_matches": int(
            warden.database.scalar(
                "SELECT count(*) FROM users WHERE email_normalized LIKE :p", p=prefix + "%"
            )
        )
        for name, prefix in PREFIXES.items()
    }
    return warden, inputs, facts


def measure(
    deployments: dict[str, tuple[stack.Warden, dict[str, Any]]],
    args: argparse.Namespace,
    wrk: str,
) -> dict[str, dict[str, list[wrk_runner.Result]]]:
    """A warm-up, then ``rounds`` rounds; in each, every operation at every size in turn.

    The sizes run side by side (one gunicorn each, idle while the other is measured), so
    a machine that slows down between rounds slows both sides alike.
    """
    rows: dict[str, dict[str, list[wrk_runner.Result]]] = {
        size: {op.key: [] for op in OPERATIONS} for size in deployments
    }
    sizes = list(deployments)
    for round_no in range(args.rounds + 1):
        for op in OPERATIONS:
            # Alternate which size goes first.
            for size in sizes if round_no % 2 else list(reversed(sizes)):
                warden, inputs = deployments[size]
                path, mode = inputs[op.key]
                seconds = (args.warmup if round_no == 0 else args.duration) * (2 if op.slow else 1)
                load = Load(args.threads, args.scale_connections, seconds)
                machine.wait_quiet(args.quiet_level, args.quiet_wait, say)
                result, restarted = wrk_runner.run_on(
                    warden.server, "/health/ready", say, wrk, warden.server.base + path, load, *mode
                )
                if restarted:
                    say(f"  {op.key}: measured again after a restart of the server")
                if result.status_errors or result.errors:
                    say(
                        f"  {op.key}: {result.status_errors} non-2xx, {result.errors} socket errors"
                    )
                if round_no == 0:
                    continue
                rows[size][op.key].append(result)
                say(
                    f"  round {round_no} {int(size):>9,} {op.key:<20} {result.rps:8.1f} req/s  "
                    f"p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms"
                )
    return rows


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def run(args: argparse.Namespace, wrk: str) -> int:
    """Seed every size, measure them interleaved, then the largest/smallest ratios."""
    sizes = [str(int(value)) for value in args.scale_sizes.split(",")]
    started = time.monotonic()
    facts: dict[str, Any] = {}
    deployments: dict[str, tuple[stack.Warden, dict[str, Any]]] = {}
    with stack.sink(keep_logs=args.keep_logs) as box:
        try:
            for offset, size in enumerate(sizes):
                warden, inputs, facts[size] = prepare(int(size), args, box, offset)
                deployments[size] = (warden, inputs)
            rows = measure(deployments, args, wrk)
        finally:
            for warden, _inputs in deployments.values():
                warden.stop()
    small, large = sizes[0], sizes[-1]
    per_size = {
        size: {
            "facts": facts[size],
            "operations": {
                key: {
                    "rps": round(_median([r.rps for r in results]), 2),
                    "p50_ms": round(_median([r.p50_ms for r in results]), 2),
                    "p99_ms": round(_median([r.p99_ms for r in results]), 2),
                    "non_2xx": sum(r.status_errors for r in results),
                    "rounds": [r.as_dict() for r in results],
                }
                for key, results in rows[size].items()
            },
        }
        for size in sizes
    }
    ratios = {}
    for op in OPERATIONS:
        pairs = list(zip(rows[small][op.key], rows[large][op.key], strict=True))
        p50 = _median([b.p50_ms / a.p50_ms for a, b in pairs])
        p99 = _median([b.p99_ms / a.p99_ms for a, b in pairs])
        ratios[op.key] = {
            "label": op.label,
            "p50_ratio": round(p50, 2),
            "p99_ratio": round(p99, 2),
            "p50_ratio_rounds": [round(b.p50_ms / a.p50_ms, 2) for a, b in pairs],
            "p99_ratio_rounds": [round(b.p99_ms / a.p99_ms, 2) for a, b in pairs],
            "target": TARGET_RATIO,
            "met": bool(p50 <= TARGET_RATIO and p99 <= TARGET_RATIO),
        }
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(wrk),
        "settings": {
            "sizes": [int(size) for size in sizes],
            "rounds": args.rounds,
            "duration_s": args.duration,
            "login_duration_s": args.duration * 2,
            "wrk_threads": args.threads,
            "wrk_connections": args.scale_connections,
            "web_concurrency": args.workers,
            "bcrypt_rounds": args.bcrypt_rounds,
            "narrow_prefix": NARROW_PREFIX,
            "wide_prefix": WIDE_PREFIX,
            "all_prefix": ALL_PREFIX,
            "ratio": "median over rounds of (largest / smallest) within the round",
        },
        "sizes": per_size,
        "ratios": ratios,
        "total_seconds": round(time.monotonic() - started),
    }
    RESULTS.mkdir(exist_ok=True)
    name = "scale" if args.output == "latest" else args.output
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    chart(document, path.with_suffix(".png"))
    print(table(document))
    say(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


def table(document: dict[str, Any]) -> str:
    """The scale figures as text."""
    sizes = [str(size) for size in document["settings"]["sizes"]]
    small, large = sizes[0], sizes[-1]
    lines = []
    for size in sizes:
        facts = document["sizes"][size]["facts"]
        lines.append(
            f"{int(size):>9,} users: seed {facts['seed_wall_s']} s wall "
            f"(command says {facts['seed_command_s']} s), VACUUM ANALYZE "
            f"{facts['vacuum_analyze_s']} s, users table {facts['users_table_mb']} MB, "
            f"{NARROW_PREFIX}: {facts['narrow_prefix_matches']} matches, "
            f"{WIDE_PREFIX}: {facts['wide_prefix_matches']}, "
            f"{ALL_PREFIX}: {facts['all_prefix_matches']}"
        )
    header = (
        f"{'operation':<38} {'p50 ' + small:>11} {'p50 ' + large:>12} {'x':>6} "
        f"{'p99 ' + small:>11} {'p99 ' + large:>12} {'x':>6}  met (<= {TARGET_RATIO})"
    )
    lines += [header, "-" * len(header)]
    for key, ratio in document["ratios"].items():
        a = document["sizes"][small]["operations"][key]
        b = document["sizes"][large]["operations"][key]
        lines.append(
            f"{ratio['label']:<38} {a['p50_ms']:11.2f} {b['p50_ms']:12.2f} "
            f"{ratio['p50_ratio']:6.2f} {a['p99_ms']:11.2f} {b['p99_ms']:12.2f} "
            f"{ratio['p99_ratio']:6.2f}  {'yes' if ratio['met'] else 'NO'}"
        )
    lines.append(
        "latencies in ms, medians over rounds; x: median of the per-round ratios "
        "(sizes measured alternately in each round); wrk with one connection per worker"
    )
    return "\n".join(lines)


def chart(document: dict[str, Any], path: Path) -> None:
    """p50 and p99 per operation at each size (log scale), with the ratio on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [str(size) for size in document["settings"]["sizes"]]
    keys = list(document["ratios"])
    figure, axes = plt.subplots(1, 2, figsize=(14, 5.5), sharey=False)
    width = 0.8 / len(sizes)
    for axis, metric in zip(axes, ("p50_ms", "p99_ms"), strict=True):
        for index, size in enumerate(sizes):
            values = [document["sizes"][size]["operations"][key][metric] for key in keys]
            axis.bar(
                [i + index * width for i in range(len(keys))],
                values,
                width,
                label=f"{int(size):,} users",
            )
        for i, key in enumerate(keys):
            ratio = document["ratios"][key][metric.replace("_ms", "_ratio")]
            top = max(document["sizes"][size]["operations"][key][metric] for size in sizes)
            axis.annotate(
                f"x{ratio:.2f}",
                (i + width * (len(sizes) - 1) / 2, top),
                ha="center",
                va="bottom",
                fontsize=8,
                color="red" if ratio > TARGET_RATIO else "black",
            )
        axis.set_yscale("log")
        axis.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(keys))])
        axis.set_xticklabels(keys, rotation=25, fontsize=8, ha="right")
        axis.set_ylabel(f"{metric.replace('_ms', '')} latency, ms (log)")
        axis.set_title(f"{metric.replace('_ms', '')}: largest/smallest ratio on top")
        axis.legend(fontsize=8)
    figure.suptitle(
        f"Warden at {' and '.join(f'{int(s):,}' for s in sizes)} users - "
        f"{document['generated_at']}, wrk -c{document['settings']['wrk_connections']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
