"""make bench: Warden under gunicorn on PostgreSQL + Redis, against a floor app, with wrk.

    .venv/bin/python bench/run.py            # about 4-5 minutes
    .venv/bin/python bench/run.py --quick    # about 2 minutes, fewer and shorter rounds
    .venv/bin/python bench/run.py --scale    # latency at 1,000 and 1,000,000 users
    .venv/bin/python bench/run.py --profile  # py-spy profiles of /users/me and /auth/refresh

See bench/README.md for what is measured and why, and docs/performance.md for figures.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import math
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import closed_loop, machine, report, stack
from bench import wrk as wrk_runner
from bench.wrk import Load, Result
from tests.live import call

RESULTS = Path(__file__).resolve().parent / "results"
SEED_PREFIX = "bench"
SEED_USERS = 1000
ACCESS_POOL = 200
UNEVEN_RETRIES = 2
UNEVEN_PAUSE = 2.0
REGISTER_PASSWORD = "violet orbit staple 9931"
# Long enough for about ten verifications per worker at cost 12.
BOUND_SECONDS = 3.0


@dataclass(frozen=True)
class Endpoint:
    """One measured request."""

    key: str
    label: str
    path: str
    compare: str  # "floor": ratio to the floor's req/s; "bcrypt": ratio to the bcrypt bound
    target: float | None
    slow: bool = False  # bcrypt-bound: runs twice as long to collect enough answers


ENDPOINTS = (
    Endpoint("users_me", "GET /api/v1/users/me", "/api/v1/users/me", "floor", 0.4),
    Endpoint("refresh", "POST /api/v1/auth/refresh", "/api/v1/auth/refresh", "floor", 0.1),
    Endpoint("admin_list", "GET /api/v1/users?limit=20", "/api/v1/users?limit=20", "floor", 0.15),
    Endpoint("health_ready", "GET /health/ready", "/health/ready", "floor", None),
    Endpoint("login", "POST /api/v1/auth/login", "/api/v1/auth/login", "bcrypt", 0.93, True),
    Endpoint(
        "register", "POST /api/v1/auth/register", "/api/v1/auth/register", "bcrypt", None, True
    ),
)
FLOOR = Endpoint("floor", "floor: GET user JSON, no auth", "/api/v1/users/me", "floor", None)


def say(message: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    print(message, file=sys.stderr, flush=True)


# -- bcrypt ---------------------------------------------------------------------------------


def _verify_for(rounds: int, seconds: float) -> list[float]:
    """Verification times at cost ``rounds``, back to back for ``seconds``."""
    from project.core.security import hash_password, verify_password

    stored = hash_password("bench bcrypt probe", rounds=rounds)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        verify_password("bench bcrypt probe", stored)
        times.append(time.perf_counter() - started)
    return times


def measure_bcrypt(rounds: int, workers: int, seconds: float = BOUND_SECONDS) -> dict[str, Any]:
    """The bcrypt bound: ``workers`` processes verifying at once, back to back, for ``seconds``.

    verify_password is what login runs. With every worker doing nothing but verifying, the
    most logins per second is workers / the mean verify time.
    """
    with ProcessPoolExecutor(max_workers=workers) as pool:
        batches = list(pool.map(_verify_for, [rounds] * workers, [seconds] * workers))
    times = [t for batch in batches for t in batch]
    mean = statistics.fmean(times)
    return {"verify_s": mean, "verifies": len(times), "bound_rps": workers / mean}


# -- the run --------------------------------------------------------------------------------


@dataclass
class Target:
    """A Warden under test and the files its wrk modes read."""

    warden: stack.Warden
    access_tokens: Path
    admin_token: Path
    emails: Path
    user_ids: list[Any]
    refresh_rps_seen: float = 0.0


@dataclass
class Bench:
    """Everything one benchmark run needs."""

    args: argparse.Namespace
    wrk: str
    box: stack.Sink
    targets: dict[str, Target]
    floor: stack.Server
    peers: dict[str, Any] = field(default_factory=dict)  # name -> bench.peers.deploy.Peer
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    rows: list[dict[str, Any]] = field(default_factory=list)
    bcrypt: list[dict[str, Any]] = field(default_factory=list)
    floor_rps_seen: float = 0.0
    registered: Iterator[int] = field(default_factory=itertools.count)

    def load(self, endpoint: Endpoint, duration: float | None = None) -> Load:
        """wrk's settings for this endpoint."""
        seconds = duration or self.args.duration
        return Load(self.args.threads, self.args.connections, seconds * (2 if endpoint.slow else 1))

    def mode(self, target: Target, endpoint: Endpoint, round_no: int, seconds: float) -> list[str]:
        """bench/wrk.lua arguments for this endpoint."""
        if endpoint.key == "users_me":
            return ["bearer", str(target.access_tokens)]
        if endpoint.key == "admin_list":
            return ["bearer", str(target.admin_token)]
        if endpoint.key == "refresh":
            pool = self.refresh_pool(target, round_no, seconds)
            return ["refresh", str(pool), str(self.args.threads)]
        if endpoint.key == "login":
            return ["login", str(target.emails), stack.SEED_PASSWORD]
        if endpoint.key == "register":
            return ["register", self.run_id, f"{round_no}{target.warden.label}", REGISTER_PASSWORD]
        return ["plain"]

    def refresh_pool(self, target: Target, round_no: int, seconds: float) -> Path:
        """Fresh refresh tokens for one run: one per request, never reused.

        Sized from the fastest refresh rate seen so far (the floor's rate before any), with
        half again as many to spare; unused tokens are simply never presented.
        """
        ceiling = target.refresh_rps_seen or self.floor_rps_seen
        count = math.ceil(ceiling * seconds * 1.5) + 500
        pairs = target.warden.mint_sessions(target.user_ids, count)
        path = self.box.folder / f"refresh-{target.warden.label}-{round_no}.txt"
        return stack.write_lines(path, [pair.refresh_token for pair in pairs])

    def measure(
        self, server: stack.Server, run: Callable[[], Result]
    ) -> tuple[Result, machine.Meter, float]:
        """Wait for a quiet machine, run the load once, meter the CPUs."""
        quiet = machine.wait_quiet(self.args.quiet_level, self.args.quiet_wait, say)
        with machine.Meter(lambda: [server.popen.pid, *server.worker_pids()]) as meter:  # type: ignore[union-attr]
            result = run()
        return result, meter, quiet

    def load_of(
        self, server: stack.Server, url_path: str, mode: Sequence[str], load: Load
    ) -> Callable[[], Result]:
        """The run of one endpoint: wrk, or for a bcrypt-bound one the closed loop."""
        if mode[0] not in ("login", "register"):
            return lambda: wrk_runner.run(self.wrk, server.base + url_path, load, *mode)
        if mode[0] == "login":
            emails = Path(mode[1]).read_text().split()

            def attempt(client: closed_loop.Client) -> bool:
                # Each client starts somewhere else in the list, as wrk.lua's threads do.
                email = emails[(client.number * 7919 + client.sent) % len(emails)]
                status, _ = client.post(url_path, {"email": email, "password": mode[2]})
                return status == 200

        else:

            def attempt(client: closed_loop.Client) -> bool:
                email = f"b{mode[1]}r{mode[2]}t{client.number}n{next(self.registered)}"
                body = {"email": f"{email}@bench.example", "password": mode[3]}
                status, _ = client.post(url_path, {**body, "full_name": "Bench User"})
                return 200 <= status < 400

        return lambda: closed_loop.drive(
            server.base, attempt, clients=load.connections, seconds=load.duration
        )

    def time_bcrypt(self) -> dict[str, Any]:
        """The bcrypt bound now (measure_bcrypt)."""
        return measure_bcrypt(self.args.bcrypt_rounds, self.args.workers)

    def uneven(self, meter: machine.Meter) -> bool:
        """Whether one process did more than halfway from its even share to all the work."""
        workers: int = self.args.workers
        return meter.busiest > (1 + 1 / workers) / 2

    def run_one(self, round_no: int, target_name: str, endpoint: Endpoint, warm: bool) -> None:
        """Measure one endpoint of one Warden (or the floor) and keep the row."""
        duration = self.args.warmup if warm else self.args.duration
        load = self.load(endpoint, duration)
        url_path = endpoint.path
        if endpoint.key == "floor":
            server = self.floor
            mode: list[str] = ["plain"]
        elif target_name in self.peers:
            peer = self.peers[target_name]
            server, mode, url_path = peer.server, peer.wrk_mode(), peer.kind.path
        else:
            target = self.targets[target_name]
            server = target.warden.server
            mode = self.mode(target, endpoint, round_no, load.duration)
        # The bound is timed on each side of the run; a machine whose speed drifts over a
        # minute shifts it and the run alike.
        before = None
        if endpoint.compare == "bcrypt" and not warm:
            machine.wait_quiet(self.args.quiet_level, self.args.quiet_wait, say)
            before = self.time_bcrypt()
        restarted = False
        try:
            result, meter, quiet = self.measure(server, self.load_of(server, url_path, mode, load))
        except wrk_runner.NoSummaryError as error:
            # Killed from outside (or it crashed): start it again and run again.
            ready = "/health/ready" if server.name.startswith("warden") else "/"
            server.revive(error, ready, say)
            if endpoint.key == "refresh":
                mode = self.mode(target, endpoint, round_no, load.duration)  # a fresh pool
            result, meter, quiet = self.measure(server, self.load_of(server, url_path, mode, load))
            restarted = True
        # wrk's connections are kept alive, so each stays with the worker that accepted it;
        # when most land on one worker, the run measures one worker, not the deployment.
        # The worker that just served everything tends to win the next accept race too, so
        # a run is repeated after a pause, at most UNEVEN_RETRIES times.
        uneven = 0
        # A bcrypt-bound run is exempt: hashing releases the GIL, so one process's threads
        # can keep every core busy.
        retry = not warm and endpoint.compare == "floor"
        while retry and uneven < UNEVEN_RETRIES and self.uneven(meter):
            uneven += 1
            say(f"  uneven: one process did {meter.busiest:.0%} of the server's work; again")
            time.sleep(UNEVEN_PAUSE)
            if endpoint.key == "refresh":
                mode = self.mode(target, endpoint, round_no, load.duration)  # a fresh pool
            result, meter, quiet = self.measure(server, self.load_of(server, url_path, mode, load))
        bound: dict[str, Any] = {}
        bound_line = ""
        if before is not None:
            after = self.time_bcrypt()
            bound = {"bound_rps": (before["bound_rps"] + after["bound_rps"]) / 2}
            self.bcrypt.append(
                {"round": round_no, "target": target_name, "endpoint": endpoint.key,
                 "before": before, "after": after, **bound}
            )  # fmt: skip
            bound_line = (
                f"\n  {'':>16} bcrypt bound {before['bound_rps']:.2f} before, "
                f"{after['bound_rps']:.2f} after: {result.rps / bound['bound_rps']:.3f} of it"
            )
        if endpoint.key == "floor":
            self.floor_rps_seen = max(self.floor_rps_seen, result.rps)
        elif endpoint.key == "refresh":
            target.refresh_rps_seen = max(target.refresh_rps_seen, result.rps)
        flag = ""
        if result.status_errors or result.errors:
            flag += f"  non-2xx={result.status_errors} socket_errors={result.errors}"
        if result.exhausted:
            flag += "  REFRESH POOL EXHAUSTED"
        say(
            f"  {'warm-up' if warm else f'round {round_no}'} {target_name:>8} "
            f"{endpoint.key:<13} {result.rps:9.1f} req/s  p50 {result.p50_ms:8.1f} ms  "
            f"p99 {result.p99_ms:8.1f} ms  "
            f"{1000 * meter.server_seconds / max(result.requests, 1):6.2f} cpu-ms/req  "
            f"cpu: server {meter.server:.0%} other {meter.other:.0%} "
            f"busiest {meter.busiest:.0%}"
            f"{flag}{bound_line}"
        )
        if warm:
            return
        self.rows.append(
            {
                "round": round_no,
                "target": target_name,
                "endpoint": endpoint.key,
                **result.as_dict(),
                **bound,
                # CPU the gunicorn workers spent per answer: steadier than req/s on a
                # machine whose speed drifts, and what a code change moves directly.
                "server_cpu_ms": round(1000 * meter.server_seconds / max(result.requests, 1), 3),
                "cpu": meter.as_dict(),
                "busy_before": round(quiet, 3),
                "server_restarted": restarted,
                "runs_repeated_uneven": uneven,
                "uneven": self.uneven(meter),
                "threads": load.threads,
                "connections": load.connections,
                "seconds": load.duration,
            }
        )

    def endpoints(self) -> list[Endpoint]:
        """The endpoints selected with --only (all by default)."""
        return select_endpoints(self.args.only)

    def run(self) -> None:
        """Warm up, then the rounds: floor first, then every endpoint of every target."""
        endpoints = self.endpoints()
        say(f"warm-up, {self.args.warmup:g} s per endpoint")
        self.run_one(0, "floor", FLOOR, warm=True)
        for endpoint in endpoints:
            for name in self.measured(endpoint):
                self.run_one(0, name, endpoint, warm=True)
        for round_no in range(1, self.args.rounds + 1):
            say(f"round {round_no} of {self.args.rounds}")
            self.run_one(round_no, "floor", FLOOR, warm=False)
            # Rotate the order each round so a slow drift of the machine spreads evenly.
            shift = (round_no - 1) % len(endpoints)
            for endpoint in endpoints[shift:] + endpoints[:shift]:
                for name in self.measured(endpoint):
                    self.run_one(round_no, name, endpoint, warm=False)

    def measured(self, endpoint: Endpoint) -> list[str]:
        """Who answers ``endpoint``: every Warden, and for /users/me the peers too."""
        names = list(self.targets)
        if endpoint.key == "users_me":
            names += list(self.peers)
        return names


def select_endpoints(only: str) -> list[Endpoint]:
    """The endpoints named in a comma-separated ``only`` (all when empty)."""
    if not only:
        return list(ENDPOINTS)
    keys = set(only.split(","))
    return [endpoint for endpoint in ENDPOINTS if endpoint.key in keys]


def prepare_target(
    label: str, root: Path, box: stack.Sink, args: argparse.Namespace, offset: int
) -> Target:
    """Create, migrate, seed and start one Warden; pre-issue the tokens its runs need."""
    warden = stack.start_warden(
        label=label,
        root=root,
        box=box,
        redis_offset=offset,
        bcrypt_rounds=args.bcrypt_rounds,
        workers=args.workers,
    )
    say(f"[{label}] database {warden.database.name}, redis {warden.redis}, code in {root}")
    warden.release_and_seed(SEED_USERS, SEED_PREFIX)
    warden.server.start()
    warden.server.wait_ready("/health/ready")
    users = warden.active_seeded(SEED_PREFIX, SEED_USERS)
    user_ids = [row.id for row in users]
    pairs = warden.mint_sessions(user_ids[:ACCESS_POOL], ACCESS_POOL)
    folder = box.folder
    access = stack.write_lines(folder / f"access-{label}.txt", [p.access_token for p in pairs])
    admin = warden.login(stack.ADMIN_EMAIL, stack.ADMIN_PASSWORD)["access_token"]
    admin_file = stack.write_lines(folder / f"admin-{label}.txt", [admin])
    emails = stack.write_lines(folder / f"emails-{label}.txt", [row.email for row in users])
    return Target(warden, access, admin_file, emails, user_ids)


def deliver_mail(bench: Bench) -> dict[str, Any]:
    """Run the RQ worker once over the queued verification mails (after the measurements).

    The worker is not running while wrk is: on this machine it would take CPU from the web
    workers, where in production it runs on its own dyno. Draining afterwards checks that
    every registration queued a mail the SMTP sink accepts.
    """
    before = len(bench.box.mailbox.messages())
    # Counted in the database: requests still in flight when wrk stopped were answered too.
    expected = sum(
        int(
            target.warden.database.scalar(
                "SELECT count(*) FROM users WHERE email_normalized LIKE :pattern",
                pattern=f"b{bench.run_id}%",
            )
        )
        for target in bench.targets.values()
    )
    started = time.perf_counter()
    for target in bench.targets.values():
        try:
            stack.run_flask(target.warden.root, target.warden.env, ["worker", "--burst"])
        except (stack.BenchError, subprocess.TimeoutExpired) as exc:
            say(f"mail delivery failed: {exc}")
    delivered = len(bench.box.mailbox.messages()) - before
    return {
        "registrations": expected,
        "mails_delivered": delivered,
        "seconds": round(time.perf_counter() - started, 1),
    }


def git_revision(root: Path) -> dict[str, Any]:
    """The commit and whether the tree had local changes."""

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - read-only git commands
            ["git", *args],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def target_roots(args: argparse.Namespace) -> dict[str, Path]:
    """The checkouts to measure: this one, or those named with --target LABEL=PATH."""
    roots: dict[str, Path] = {}
    for item in args.target:
        label, _, path = item.partition("=")
        if not label.isidentifier() or not path or not (Path(path) / "Procfile").is_file():
            raise stack.BenchError(f"--target {item!r}: expected LABEL=PATH of a checkout")
        roots[label] = Path(path).resolve()
    return roots or {"warden": stack.HARNESS_ROOT}


def run_bench(args: argparse.Namespace, wrk: str) -> int:
    """The default mode: the throughput and latency table."""
    started = time.monotonic()
    roots = target_roots(args)
    with stack.sink(keep_logs=args.keep_logs) as box:
        targets: dict[str, Target] = {}
        peers: dict[str, Any] = {}
        floor: stack.Server | None = None
        try:
            for offset, (label, root) in enumerate(roots.items()):
                targets[label] = prepare_target(label, root, box, args, offset)
            first = next(iter(targets.values()))
            status, body = call(
                first.warden.server.base,
                "GET",
                "/api/v1/users/me",
                token=first.access_tokens.read_text().split()[0],
            )
            if status != 200:
                raise stack.BenchError(f"GET /users/me answered {status}: {body}")
            body_file = box.folder / "floor-body.json"
            body_file.write_text(json.dumps(body))
            floor = stack.start_floor(env=first.warden.env, box=box, body_file=body_file)
            if args.peers and any(e.key == "users_me" for e in select_endpoints(args.only)):
                from bench.peers import deploy

                peers = deploy.start(box, workers=args.workers, tokens=ACCESS_POOL, say=say)
            bench = Bench(args, wrk, box, targets, floor, peers)
            load_before = machine.load()
            say(f"setup took {time.monotonic() - started:.0f} s")
            bench.run()
            load_after = machine.load()
            mail = None
            if any(endpoint.key == "register" for endpoint in bench.endpoints()):
                mail = deliver_mail(bench)
                say(
                    f"mail: {mail['mails_delivered']} delivered to the SMTP sink for "
                    f"{mail['registrations']} registrations"
                )
        finally:
            for peer in peers.values():
                peer.stop()
            if floor is not None:
                floor.stop()
            for target in targets.values():
                target.warden.stop()
    summary = report.summarize(bench.rows, bench.bcrypt, ENDPOINTS, args.workers)
    report.compare_peers(summary, bench.rows, list(bench.targets), list(bench.peers))
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(wrk),
        "load": {"before": load_before, "after": load_after},
        "code": {label: git_revision(root) for label, root in roots.items()},
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "bcrypt_endpoint_duration_s": args.duration * 2,
            "warmup_s": args.warmup,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "web_concurrency": args.workers,
            # Warden and the floor share gunicorn.conf.py and the environment.
            **stack.worker_model(next(iter(bench.targets.values())).warden.env),
            "bcrypt_rounds": args.bcrypt_rounds,
            "seeded_users": SEED_USERS,
            "access_token_pool": ACCESS_POOL,
            "refresh": "a pool of pre-issued refresh tokens, one per request (real rotations)",
            "quiet_level": args.quiet_level,
        },
        "bcrypt": bench.bcrypt,
        "summary": summary,
        "mail": mail,
        "rounds": bench.rows,
        "total_seconds": round(time.monotonic() - started),
    }
    RESULTS.mkdir(exist_ok=True)
    json_path = RESULTS / f"{args.output}.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    report.chart(document, RESULTS / f"{args.output}.png")
    print(report.table(document))
    say(f"wrote {json_path} and {json_path.with_suffix('.png')}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4 s (about 2 min)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--duration", type=float, default=8, help="seconds per run (default 8)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per endpoint")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (default 2)")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="BCRYPT_ROUNDS (12)")
    parser.add_argument("--only", default="", help="comma-separated endpoint keys")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="measure the checkout at PATH instead of this one; repeat to interleave several "
        "(before/after comparisons in one run)",
    )
    parser.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="leave out the peers (Flask-Security-Too, fastapi-users) on /users/me",
    )
    parser.add_argument("--output", default="latest", help="results file name (latest)")
    parser.add_argument(
        "--quiet-level",
        type=float,
        default=0.15,
        help="before each run wait until the machine is at most this busy (0..1, 0.15)",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=20, help="longest wait for quiet, seconds (20)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs and files")
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=1800,
        help="longest wait for another benchmark on this machine to finish, s (1800)",
    )
    parser.add_argument("--scale", action="store_true", help="latency at 1K and 1M users")
    parser.add_argument(
        "--scale-sizes", default="1000,1000000", help="user counts for --scale (1000,1000000)"
    )
    parser.add_argument(
        "--scale-connections",
        type=int,
        default=2,
        help="wrk connections in --scale (default 2: one per worker, no queueing)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy profiles under load")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 4, 1
    return args


@contextmanager
def exclusive(wait: float) -> Iterator[None]:
    """One benchmark at a time on this machine: two would share the cores and Redis db."""
    path = Path(tempfile.gettempdir()) / "warden-bench.lock"
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait
        warned = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise stack.BenchError(f"another benchmark still holds {path}") from None
                if not warned:
                    say(f"another benchmark is running ({path}); waiting for it to finish")
                    warned = True
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so databases are dropped and servers stopped.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        wrk = stack.require_wrk()
        stack.check_services()
        with exclusive(args.lock_wait):
            return dispatch(args, wrk)
    except stack.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


def dispatch(args: argparse.Namespace, wrk: str) -> int:
    """Run the selected mode."""
    if args.scale:
        from bench import scale

        return scale.run(args, wrk)
    if args.profile:
        from bench import profile

        return profile.run(args, wrk)
    return run_bench(args, wrk)


if __name__ == "__main__":
    sys.exit(main())
