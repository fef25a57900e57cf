"""CPU instructions per request in process, counted by valgrind's callgrind.

    .venv/bin/python bench/instructions.py                          # this checkout
    .venv/bin/python bench/instructions.py --target before=/tmp/before --target after=/tmp/after

req/s on a shared machine varies by 10-20 % between runs; an instruction count does not
(the same code counts the same within 0.1 %, whatever else the machine runs). So a small
change is judged here first, and by bench/run.py's A/B under load after.

The production app (on a fresh PostgreSQL database and its own Redis database, as `make
bench` deploys it) is called as gunicorn calls it, through its WSGI callable, with no
server and no load generator. Each endpoint runs twice under callgrind, with N1 and N2
requests after the same set-up; the difference divided by N2 - N1 is one request's count,
without the start-up. Writes bench/results/instructions.json (or --output NAME).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

HARNESS_ROOT = Path(__file__).resolve().parent.parent
REDIS_OFFSET = 5  # BENCH_REDIS_URL's database minus 5: away from the other tools
ENDPOINTS = ("users_me", "refresh", "admin_list", "login")
# A body travels in the environ under this key; serve gives each request a fresh stream.
BODY = "bench.body"
WARM_UP = 200
VALGRIND = shutil.which("valgrind")


def serve(app: Any, environ: dict[str, Any]) -> str:
    """One request through the app's WSGI callable; its status line."""
    status: list[str] = []
    body = app(
        {**environ, "wsgi.input": io.BytesIO(environ.get(BODY, b""))},
        lambda line, _headers, _exc_info=None: status.append(line),
    )
    b"".join(body)
    body.close()
    return status[0]


@contextmanager
def requests_for(
    root: Path, endpoint: str, count: int
) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """The app and ``count`` WSGI environs for ``endpoint`` (with ``project`` from ``root``)."""
    from bench import stack

    with stack.sink() as box:
        warden = stack.start_warden(
            label="instructions",
            root=root,
            box=box,
            redis_offset=REDIS_OFFSET,
            bcrypt_rounds=4,
            workers=1,
        )
        try:
            yield prepared(warden, endpoint, count)
        finally:
            warden.stop()


def prepared(warden: Any, endpoint: str, count: int) -> tuple[Any, list[dict[str, Any]]]:
    """Seed ``warden``'s database; its app and ``count`` environs for ``endpoint``."""
    from config import load_settings
    from project import create_app

    warden.release_and_seed(50, "bench")
    environs = _environs(warden, endpoint, count)
    # Made after the environs: minting sessions creates the harness's own app, whose
    # create_app sets the root logger's level, and the access line must be counted.
    app = create_app(load_settings({**warden.env, "LOG_LEVEL": "INFO"}))
    # The access log line is part of the count, but not of this process's output.
    handler = cast(logging.StreamHandler, logging.getLogger().handlers[0])  # type: ignore[type-arg]
    handler.setStream(open("/dev/null", "w"))  # noqa: SIM115
    return app, environs


def _environs(warden: Any, endpoint: str, count: int) -> list[dict[str, Any]]:
    """``count`` WSGI environs for ``endpoint``, with sessions minted for them."""
    from werkzeug.test import EnvironBuilder

    from bench import stack

    def environ(path: str, token: str | None, **options: Any) -> dict[str, Any]:
        headers: dict[str, str] = {"Host": "localhost:8000", "User-Agent": "wrk"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        built = EnvironBuilder(path=path, headers=list(headers.items()), **options).get_environ()
        return {**built, "REMOTE_ADDR": "127.0.0.1", BODY: options.get("data", b"")}

    if endpoint == "login":
        # bcrypt at cost 4 is about 4M instructions of the count; the rest is Warden's own.
        users = [row.email for row in warden.active_seeded("bench", 50)]
        return [
            environ(
                "/api/v1/auth/login",
                None,
                method="POST",
                content_type="application/json",
                data=json.dumps(
                    {"email": users[number % len(users)], "password": stack.SEED_PASSWORD}
                ).encode(),
            )
            for number in range(count)
        ]

    if endpoint == "refresh":
        users = [row.id for row in warden.active_seeded("bench", 50)]
        pairs = warden.mint_sessions(users, count)
        return [
            environ("/api/v1/auth/refresh", pair.refresh_token, method="POST") for pair in pairs
        ]
    if endpoint == "admin_list":
        admin = warden.database.rows(
            "SELECT id FROM users WHERE email = :email", email=stack.ADMIN_EMAIL
        )[0].id
        token = warden.mint_sessions([admin], 1)[0].access_token
        return [environ("/api/v1/users", token, query_string="limit=20")] * count
    user = warden.active_seeded("bench", 1)[0].id
    token = warden.mint_sessions([user], 1)[0].access_token
    return [environ("/api/v1/users/me", token)] * count


def child(root: Path, endpoint: str, requests: int, total: int) -> None:
    """Set up for ``total`` requests, then serve a warm-up and ``requests`` of them."""
    sys.path.insert(0, str(root))
    if not (root / "bench" / "stack.py").exists():
        sys.path.append(str(HARNESS_ROOT))
    with requests_for(root, endpoint, WARM_UP + total) as (app, environs):
        for environ in environs[: WARM_UP + requests]:
            status = serve(app, environ)
            if not status.startswith("200"):
                raise SystemExit(f"{endpoint}: {status}")


def count(root: str, endpoint: str, requests: int, total: int) -> int:
    """Instructions callgrind counts in a child serving ``requests`` requests."""
    assert VALGRIND is not None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        completed = subprocess.run(  # noqa: S603 - valgrind on this harness
            [
                VALGRIND,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                str(Path(root).resolve()),
                endpoint,
                str(requests),
                str(total),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=root,
        )
        if completed.returncode != 0:
            raise SystemExit(f"{endpoint} in {root} failed:\n{completed.stderr[-3000:]}")
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit(f"callgrind wrote no total for {endpoint} in {root}")
        return int(found.group(1))


def per_request(measure: Callable[[int], int], low: int, high: int) -> float:
    """Instructions of one request: the counts at ``high`` and ``low`` requests, differenced."""
    return (measure(high) - measure(low)) / (high - low)


def main(argv: Sequence[str] | None = None) -> int:
    """Count each --target's instructions per request on each endpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--only", default=",".join(ENDPOINTS), help="comma-separated endpoints")
    parser.add_argument("--low", type=int, default=100, help="N1 requests (100)")
    parser.add_argument("--high", type=int, default=400, help="N2 requests (400)")
    parser.add_argument("--output", default="instructions")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        root, endpoint, requests, total = args.child
        child(Path(root), endpoint, int(requests), int(total))
        return 0
    if VALGRIND is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    sys.path.insert(0, str(HARNESS_ROOT))
    from bench import stack

    targets = dict(item.partition("=")[::2] for item in args.target) or {
        "warden": str(HARNESS_ROOT)
    }
    endpoints = [name for name in args.only.split(",") if name]
    unknown = set(endpoints) - set(ENDPOINTS)
    if unknown:
        parser.error(f"unknown endpoints: {', '.join(sorted(unknown))}")
    results: dict[str, dict[str, float]] = {label: {} for label in targets}
    for endpoint in endpoints:
        for label, path in targets.items():
            results[label][endpoint] = per_request(
                lambda requests, path=path, endpoint=endpoint: count(  # type: ignore[misc]
                    path, endpoint, requests, args.high
                ),
                args.low,
                args.high,
            )
            print(f"{label:<12} {endpoint:<12} {results[label][endpoint]:>12,.0f}", flush=True)
    out = stack.write_result(
        args.output,
        {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requests": [args.low, args.high],
            "instructions_per_request": results,
        },
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
