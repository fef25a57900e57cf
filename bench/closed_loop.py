"""A closed-loop load for bcrypt-bound endpoints that counts every answer it asked for.

wrk stops at its deadline and drops the requests in flight. That costs nothing on a fast
endpoint, but a login takes about a second under load, and at 8 connections wrk leaves
about four logins' worth of served work uncounted: 3-4 % of a 16-s run. Here each client
sends its next request as soon as its answer comes, sends nothing new after the deadline
and waits for its last answer; the rate is answers over the time to the last one. The
cores idle only while the last few answers finish, so the rate errs low, never high.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bench.wrk import Result

HEADERS = {"Content-Type": "application/json", "User-Agent": "warden-bench"}


class Client:
    """One keep-alive connection, as one of wrk's connections."""

    def __init__(self, base: str, number: int) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.number = number
        self.sent = 0
        self._connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST JSON on this connection; the status and decoded body."""
        self.sent += 1
        self._connection.request("POST", path, body=json.dumps(body), headers=HEADERS)
        response = self._connection.getresponse()
        data = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.reopen()
        # gunicorn's own error pages (a worker timeout, say) are not JSON.
        if "json" not in response.getheader("Content-Type", ""):
            return response.status, None
        return response.status, json.loads(data)

    def reopen(self) -> None:
        """Start a new connection (after the server closed this one)."""
        self._connection.close()
        self._connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def drive(base: str, attempt: Callable[[Client], bool], *, clients: int, seconds: float) -> Result:
    """Run ``clients`` clients through ``attempt`` until ``seconds``, then let them finish.

    ``attempt`` makes one request (or one sign-in of several) and says whether it ended
    as it should. Its latency counts from its first byte sent to its last byte read.
    """
    lock = threading.Lock()
    latencies: list[float] = []
    failed = broken = 0
    finished_at = 0.0
    started = time.perf_counter()
    deadline = started + seconds

    def run(client: Client) -> None:
        nonlocal failed, broken, finished_at
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                good = attempt(client)
            except (OSError, http.client.HTTPException):
                client.reopen()
                with lock:
                    broken += 1
                continue
            ended = time.perf_counter()
            with lock:
                latencies.append(ended - began)
                failed += not good
                finished_at = max(finished_at, ended)
        client.close()

    threads = [
        threading.Thread(target=run, args=(Client(base, number),)) for number in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    quantiles = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [latencies[0] if latencies else 0.0] * 99
    )
    return Result(
        requests=len(latencies),
        errors=broken,
        status_errors=failed,
        duration_s=(finished_at or time.perf_counter()) - started,
        p50_ms=1000 * quantiles[49],
        p90_ms=1000 * quantiles[89],
        p99_ms=1000 * quantiles[98],
        max_ms=1000 * max(latencies, default=0.0),
        exhausted=False,
        tokens_used=0,
    )
