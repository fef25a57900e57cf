"""A bounded flood of logins and registrations from many loopback addresses, with probes.

Each flooder sends from its own source address (``127.77.x.y``: Linux answers on all of
127/8), so per-address limits see many clients; probes time cheap requests meanwhile.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """One response: its status, its Retry-After and how long it took, in seconds."""

    status: int
    retry_after: str | None
    seconds: float


@dataclass
class FloodResult:
    """What the flooders got and what the probes measured."""

    floods: list[Answer] = field(default_factory=list)
    probes: dict[str, list[Answer]] = field(default_factory=dict)

    def percentile_ms(self, probe: str, percent: int) -> float:
        """The probe's latency at ``percent`` (50, 99), in milliseconds."""
        seconds = [answer.seconds for answer in self.probes[probe]]
        if len(seconds) < 2:
            return max(seconds) * 1000
        return statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1] * 1000


def source_address(index: int) -> str:
    """The loopback address flooder ``index`` sends from."""
    return f"127.77.{index // 200}.{index % 200 + 1}"


def send(
    base: str,
    method: str,
    path: str,
    *,
    body: object = None,
    token: str | None = None,
    source: str = "127.0.0.1",
    timeout: float = 60,
) -> Answer:
    """Send one request on a new connection from ``source``; return its answer."""
    url = urlsplit(base)
    headers = {"Connection": "close"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port, timeout=timeout, source_address=(source, 0)
    )
    started = time.perf_counter()
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        return Answer(
            response.status, response.getheader("Retry-After"), time.perf_counter() - started
        )
    except OSError:  # refused or timed out: status 0, counted with its time
        return Answer(0, None, time.perf_counter() - started)
    finally:
        connection.close()


def _flooder(base: str, index: int, stop: threading.Event, out: list[Answer]) -> None:
    source = source_address(index)
    while not stop.is_set():
        email = f"flood-{uuid.uuid4().hex[:12]}@example.com"
        path = "/api/v1/auth/login" if index % 2 else "/api/v1/auth/register"
        password = "a walk in the park at dawn"
        answer = send(
            base, "POST", path, body={"email": email, "password": password}, source=source
        )
        out.append(answer)
        if answer.retry_after:
            time.sleep(float(answer.retry_after))  # each client retries when it is told to


def _prober(
    base: str, path: str, token: str | None, stop: threading.Event, out: list[Answer]
) -> None:
    while not stop.is_set():
        out.append(send(base, "GET", path, token=token))
        time.sleep(0.05)


def flood(base: str, *, token: str, flooders: int, seconds: float) -> FloodResult:
    """Flood ``base`` for ``seconds`` from ``flooders`` addresses while probing it."""
    result = FloodResult(probes={"live": [], "me": []})
    stop = threading.Event()
    threads = [
        threading.Thread(target=_flooder, args=(base, index, stop, result.floods))
        for index in range(flooders)
    ]
    probes = {"live": ("/health/live", None), "me": ("/api/v1/users/me", token)}
    for name, (path, credential) in probes.items():
        thread = threading.Thread(
            target=_prober, args=(base, path, credential, stop, result.probes[name])
        )
        threads.append(thread)
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return result
