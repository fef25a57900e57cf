"""How long a logout on one instance takes to be refused by another.

    .venv/bin/python bench/propagation.py              # 200 logouts, about a minute
    .venv/bin/python bench/propagation.py --logouts 50

Two gunicorns (instances A and B, the Procfile web line, two workers each) share one fresh
PostgreSQL database and one Redis database, as two dynos would. For each of ``--logouts``
sessions: B answers its access token a few times (so B's workers hold it in memory), A
logs it out, and from the moment A's answer arrives B is asked again and again, each time
on a new connection (so either worker may answer), for ``--watch`` ms. The time to refusal
is when the first answer of the run of 401s that lasts to the end of the watch arrived:
an upper bound, since the read that saw it was sent earlier. A 200 after a 401 counts as
a flap. Writes bench/results/propagation.json.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine, stack
from bench.run import exclusive, say
from tests.live import call

USERS = 20
TARGET_MS = 50.0


def read_status(port: int, token: str) -> int:
    """GET /users/me on a new connection; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def watch(port: int, token: str, seconds: float) -> tuple[float | None, int, int]:
    """Read ``token`` on B until ``seconds`` pass after the logout; return the time (s) the
    lasting refusal was first seen, the reads made, and the flaps (200 after 401)."""
    started = time.perf_counter()
    refused_at: float | None = None
    reads = flaps = 0
    seen_refusal = False
    while True:
        status = read_status(port, token)
        now = time.perf_counter() - started
        reads += 1
        if status == 401:
            seen_refusal = True
            if refused_at is None:
                refused_at = now
        elif status == 200:
            if seen_refusal:
                flaps += 1
            refused_at = None
        else:
            raise stack.BenchError(f"B answered {status}")
        if now >= seconds and reads >= 4:
            return refused_at, reads, flaps


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run(args: argparse.Namespace) -> int:
    """Deploy A and B, loop logouts on A and reads on B, report."""
    load_before = machine.load()
    with stack.sink(keep_logs=args.keep_logs) as box:
        warden = stack.start_warden(
            label="prop",
            root=stack.HARNESS_ROOT,
            box=box,
            redis_offset=0,
            bcrypt_rounds=4,
            workers=args.workers,
        )
        other = stack.Server(
            "warden-prop-b", warden.root, warden.env, warden.server.command, box.folder
        )
        try:
            warden.release_and_seed(USERS, "prop")
            for server in (warden.server, other):
                server.start()
            for server in (warden.server, other):
                server.wait_ready("/health/ready")
            user_ids = [row.id for row in warden.active_seeded("prop", USERS)]
            pairs = warden.mint_sessions(user_ids, args.logouts)
            times: list[float] = []
            never = flaps = reads = 0
            for index, pair in enumerate(pairs):
                token = pair.access_token
                for _ in range(args.warm_reads):
                    if read_status(other.port, token) != 200:
                        raise stack.BenchError("B refused a live session")
                status, _ = call(warden.server.base, "POST", "/api/v1/auth/logout", token=token)
                if status != 204:
                    raise stack.BenchError(f"logout on A answered {status}")
                refused_at, made, flapped = watch(other.port, token, args.watch / 1000)
                reads += made
                flaps += flapped
                if refused_at is None:
                    never += 1
                else:
                    times.append(refused_at * 1000)
                if (index + 1) % 50 == 0:
                    say(f"  {index + 1} logouts, p99 so far {percentile(times, 0.99):.1f} ms")
        finally:
            other.stop()
            warden.stop()
    load_after = machine.load()
    summary = {
        "logouts": len(times) + never,
        "never_refused_within_watch": never,
        "flaps": flaps,
        "reads": reads,
        "p50_ms": round(statistics.median(times), 2) if times else None,
        "p99_ms": round(percentile(times, 0.99), 2) if times else None,
        "max_ms": round(max(times), 2) if times else None,
        "target_p99_ms": TARGET_MS,
    }
    document = {
        "machine": machine.describe(None),
        "load_before": load_before,
        "load_after": load_after,
        "settings": {
            "workers_per_instance": args.workers,
            "warm_reads": args.warm_reads,
            "watch_ms": args.watch,
        },
        "summary": summary,
        "times_ms": [round(t, 2) for t in times],
    }
    path = stack.write_result(args.output, document)
    print(
        f"logout on A refused on B: p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
        f"max {summary['max_ms']} ms over {summary['logouts']} logouts "
        f"({never} never refused within {args.watch:g} ms, {flaps} flaps); "
        f"load before {load_before}, after {load_after}"
    )
    say(f"wrote {path}")
    return 0 if never == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--logouts", type=int, default=200, help="logouts measured (200)")
    parser.add_argument("--watch", type=float, default=100, help="ms B is watched after each")
    parser.add_argument("--warm-reads", type=int, default=4, help="reads on B before (4)")
    parser.add_argument("--workers", type=int, default=2, help="workers per instance (2)")
    parser.add_argument("--output", default="propagation", help="results file name")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs")
    parser.add_argument("--lock-wait", type=float, default=1800, help="wait for another bench")
    parser.add_argument(
        "--no-lock",
        action="store_true",
        help="run beside another benchmark (one request at a time: it hardly loads the machine)",
    )
    args = parser.parse_args(argv)
    try:
        stack.check_services()
        if args.no_lock:
            return run(args)
        with exclusive(args.lock_wait):
            return run(args)
    except stack.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
