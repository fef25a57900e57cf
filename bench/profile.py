"""bench/run.py --profile: where a gunicorn worker's time goes under wrk load (py-spy).

py-spy samples both workers (--subprocesses on the gunicorn master) while wrk drives one
endpoint. The collapsed stacks are summarized two ways, written to
bench/results/profile-<endpoint>.txt:

- by component: the part of Warden a sample belongs to (rate limiting, the session check,
  JWT decoding, the refresh use case, response serialization, logging, gunicorn's socket
  work...), so the table adds up to 100 %;
- by leaf: where the CPU (or the wait) actually was (Redis socket, PostgreSQL socket...).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import stack
from bench import wrk as wrk_runner
from bench.run import ENDPOINTS, RESULTS, Endpoint, prepare_target, say
from bench.wrk import Load

PROFILED = ("users_me", "refresh", "admin_list")

# First match wins, looking at the whole stack of a sample.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "rate limiting (flask-limiter: hit + X-RateLimit-* window)",
        # Not the route decorator's wrapper, which encloses the whole view.
        ("Limiter._check_request_limit", "add_rate_limit_headers", "limits/"),
    ),
    ("refresh use case (rotate, commit, sign)", ("refresh (project/services/auth.py",)),
    (
        "session check: access.check (Redis markers, user cache, DB)",
        ("check (project/services/access.py", "authenticate (project/services/auth.py"),
    ),
    ("JWT decode and verify (flask-jwt-extended, PyJWT)", ("flask_jwt_extended/", "jwt/api_")),
    (
        "the view's database work (SQLAlchemy, psycopg, session close)",
        ("sqlalchemy/", "psycopg/", "end_database_session"),
    ),
    ("argument parsing and serialization (marshmallow)", ("marshmallow/",)),
    ("access log line (logging)", ("logging/__init__.py", "project/core/logging.py")),
    ("metrics (prometheus-client)", ("prometheus_client/",)),
    ("other Flask/Werkzeug request handling", ("flask/", "werkzeug/", "flask_cors/")),
    ("gunicorn: accept, parse, write, close", ("gunicorn/",)),
)
LEAVES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Redis round trips (redis-py socket send/recv)", ("redis/",)),
    ("PostgreSQL round trips (psycopg wait/send)", ("psycopg/",)),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("socket writes to the client (gunicorn)", ("gunicorn/",)),
)


def _frames(line: str) -> tuple[list[str], int]:
    stack_text, _, count = line.rpartition(" ")
    if not count.isdigit():
        # --nonblocking reads a running process: now and then a stack comes out garbled.
        return [], 0
    return [re.sub(r":\d+\)", ")", frame) for frame in stack_text.split(";")], int(count)


def read_collapsed(path: Path) -> str:
    """py-spy's raw (collapsed) output, gzipped or not."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as handle:
            return handle.read()
    return path.read_text()


def summarize(collapsed: Path, title: str) -> str:
    """Component and leaf breakdowns, then the heaviest project and library functions."""
    components: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in read_collapsed(collapsed).splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        if not count or not any("handle_request (gunicorn" in frame for frame in frames):
            continue  # idle accept loop, master process
        total += count
        joined = ";".join(frames)
        for name, patterns in COMPONENTS:
            if any(pattern in joined for pattern in patterns):
                components[name] += count
                break
        else:
            components["other"] += count
        leaf = frames[-1]
        for name, patterns in LEAVES:
            if any(pattern in leaf for pattern in patterns):
                leaves[name] += count
                break
        else:
            leaves["other Python"] += count
        for frame in dict.fromkeys(frames):
            inclusive[frame] += count
    lines = [title, f"samples inside a request: {total}", "", "by component (first match):"]
    for name, count in components.most_common():
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    lines += ["", "by leaf frame (where the time was spent):"]
    for name, count in leaves.most_common():
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    lines += ["", "heaviest functions (inclusive), project code first:"]
    project = [(f, c) for f, c in inclusive.most_common() if "project/" in f]
    library = [
        (f, c)
        for f, c in inclusive.most_common()
        if "project/" not in f and "gunicorn" not in f and "flask/app.py" not in f
    ]
    for frame, count in project[:20]:
        lines.append(f"  {100 * count / total:5.1f} %  {frame}")
    lines.append("  ...")
    for frame, count in library[:25]:
        lines.append(f"  {100 * count / total:5.1f} %  {frame}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, wrk: str) -> int:
    """Profile GET /users/me and POST /auth/refresh of this checkout (or --target)."""
    from bench.run import Bench, target_roots

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise stack.BenchError("py-spy is not installed: pip install py-spy (see bench/README.md)")
    label, root = next(iter(target_roots(args).items()))
    seconds = max(args.duration, 10)
    with stack.sink(keep_logs=args.keep_logs) as box:
        target = prepare_target(label, root, box, args, 0)
        try:
            bench = Bench(args, wrk, box, {label: target}, target.warden.server)
            bench.floor_rps_seen = 1000.0  # sizes the first refresh pool
            for key in PROFILED:
                endpoint: Endpoint = next(e for e in ENDPOINTS if e.key == key)
                server = target.warden.server
                load = Load(args.threads, args.connections, seconds)
                warm = bench.mode(target, endpoint, 0, 3)
                wrk_runner.run(wrk, server.base + endpoint.path, Load(2, 8, 3), *warm)
                mode = bench.mode(target, endpoint, 1, seconds)
                raw = box.folder / f"profile-{key}.collapsed"
                recorder = subprocess.Popen(  # noqa: S603 - py-spy on our own gunicorn
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(server.popen.pid),  # type: ignore[union-attr]
                        "--subprocesses",
                        "--rate",
                        "200",
                        "--duration",
                        str(int(seconds)),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(raw),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                time.sleep(0.5)
                result = wrk_runner.run(wrk, server.base + endpoint.path, load, *mode)
                _, errors = recorder.communicate(timeout=seconds + 60)
                if not raw.exists():
                    raise stack.BenchError(f"py-spy wrote nothing: {errors.decode()[-2000:]}")
                title = (
                    f"py-spy profile of {endpoint.label} ({label}, {root}): wrk "
                    f"-t{load.threads} -c{load.connections} {seconds:g} s, "
                    f"{result.rps:.1f} req/s, p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms, 200 samples/s per worker"
                )
                text = summarize(raw, title)
                name = key if args.output == "latest" else f"{args.output}-{key}"
                RESULTS.mkdir(exist_ok=True)
                if args.keep_logs:
                    # The stacks, to summarize again (python -m bench.profile FILE) or to
                    # feed a flame graph tool.
                    with gzip.open(box.folder / f"profile-{name}.collapsed.gz", "wt") as packed:
                        packed.write(raw.read_text())
                out = RESULTS / f"profile-{name}.txt"
                out.write_text(text)
                print(text)
                say(f"wrote {out}")
        finally:
            target.warden.stop()
    return 0


if __name__ == "__main__":
    # Summarize stacks kept by an earlier run: python -m bench.profile FILE.collapsed.gz
    for argument in sys.argv[1:]:
        print(summarize(Path(argument), argument))
