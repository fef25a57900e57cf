"""CPU per GET /api/v1/users/me in process, with parts of Warden's work switched off.

    .venv/bin/python bench/inprocess.py                       # this checkout
    .venv/bin/python bench/inprocess.py --target before=/tmp/before --target after=/tmp/after

No server and no load generator: the production app (on a fresh PostgreSQL database and its
own Redis database, as `make bench` deploys it) answers through Flask's test client, and the
process's CPU time is divided by the number of requests. That shows what each part of an
authenticated read costs, and what is left when a part is gone:

- ``floor``: bench/floor_app.py, the bare Flask app the harness compares against;
- ``warden``: the production configuration, limits lifted as in `make bench`;
- ``no_rate_limits``: the same with RATELIMIT_ENABLED=false (no limit is counted);
- ``no_redis_on_the_path``: a probe, not a configuration: no rate limits, and the session
  check answered from memory (``project.services.access.check`` replaced by a function
  returning the user), so the request makes no round trip at all.

Each configuration runs in a child process of its own (for --target, with that checkout's
``project`` imported), interleaved over --rounds; the result is the median. Writes
bench/results/inprocess.json (or --output NAME) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HARNESS_ROOT = Path(__file__).resolve().parent.parent
REDIS_OFFSET = 6  # BENCH_REDIS_URL's database minus 6: away from roundtrips.py and make bench
CONFIGURATIONS = ("floor", "warden", "no_rate_limits", "no_redis_on_the_path")


def cpu_per_request(client: Any, path: str, headers: dict[str, str], requests: int) -> float:
    """Microseconds of this process's CPU per answered request."""
    for _ in range(min(300, requests)):
        client.get(path, headers=headers)
    start = time.process_time()
    for _ in range(requests):
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.get_data(as_text=True)}")
    return (time.process_time() - start) / requests * 1e6


def child(root: Path, configuration: str, requests: int) -> float:
    """Measure one configuration of one checkout; ``project`` is imported from ``root``."""
    sys.path.insert(0, str(root))
    if not (root / "bench" / "stack.py").exists():
        sys.path.append(str(HARNESS_ROOT))
    if configuration == "floor":
        from bench.floor_app import create_floor_app

        return cpu_per_request(create_floor_app().test_client(), "/api/v1/users/me", {}, requests)

    from bench import stack
    from config import load_settings
    from project import create_app

    with stack.sink() as box:
        warden = stack.start_warden(
            label="inproc",
            root=root,
            box=box,
            redis_offset=REDIS_OFFSET,
            bcrypt_rounds=4,
            workers=1,
        )
        try:
            warden.release_and_seed(10, "bench")
            user_id = warden.active_seeded("bench", 1)[0].id
            token = warden.mint_sessions([user_id], 1)[0].access_token
            env = {**warden.env, "LOG_LEVEL": "INFO"}
            if configuration != "warden":
                env["RATELIMIT_ENABLED"] = "false"
            app = create_app(load_settings(env))
            # The access log line is part of the cost, but not of this process's output.
            logging.getLogger().handlers[0].setStream(open("/dev/null", "w"))  # noqa: SIM115
            if configuration == "no_redis_on_the_path":
                import importlib.util

                from project.models import User

                with app.app_context():
                    user = app.extensions["sqlalchemy"].session.get(User, user_id)
                    app.extensions["sqlalchemy"].session.expunge(user)
                # A checkout from before project.services.access checks in services.auth.
                if importlib.util.find_spec("project.services.access"):
                    from project.services import access

                    access.check = lambda *_, **__: user  # type: ignore[assignment]
                else:
                    from project.services import auth

                    auth.authenticate = lambda **_: user  # type: ignore[attr-defined]
            return cpu_per_request(
                app.test_client(),
                "/api/v1/users/me",
                {"Authorization": f"Bearer {token}"},
                requests,
            )
        finally:
            warden.stop()


def table(document: dict[str, Any]) -> str:
    """The medians as text, one column per target."""
    labels = list(document["targets"])
    lines = [f"{'µs of CPU per GET /users/me':<28}" + "".join(f"{label:>14}" for label in labels)]
    for configuration in CONFIGURATIONS:
        cells = "".join(
            f"{document['targets'][label][configuration]['median_us']:>14.0f}" for label in labels
        )
        lines.append(f"{configuration:<28}{cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every configuration of each --target (default: this checkout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="inprocess")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1], args.requests)))
        return 0
    sys.path.insert(0, str(HARNESS_ROOT))
    from bench import stack

    targets = dict(item.partition("=")[::2] for item in args.target) or {
        "warden": str(HARNESS_ROOT)
    }
    samples: dict[str, dict[str, list[float]]] = {
        label: {configuration: [] for configuration in CONFIGURATIONS} for label in targets
    }
    for _ in range(args.rounds):
        for configuration in CONFIGURATIONS:
            for label, path in targets.items():
                try:
                    value = stack.run_child(
                        __file__, path, configuration, "--requests", str(args.requests)
                    )
                except stack.BenchError as exc:
                    print(exc, file=sys.stderr)
                    return 1
                samples[label][configuration].append(float(value))
    document: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "requests": args.requests,
        "rounds": args.rounds,
        "targets": {
            label: {
                configuration: {"median_us": statistics.median(values), "samples_us": values}
                for configuration, values in by_configuration.items()
            }
            for label, by_configuration in samples.items()
        },
    }
    out = stack.write_result(args.output, document)
    print(table(document))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
