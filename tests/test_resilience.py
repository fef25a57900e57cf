"""Fault tests: the Procfile's processes against a PostgreSQL and a Redis we stop and kill.

Each test runs gunicorn (two workers, APP_ENV=production) over servers of its own
(tests/servers.py), never the shared ones. docs/operations.md describes the behaviour they check.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.live import Deployment, decode_body, json_request, production_env
from tests.mailbox import Mailbox
from tests.servers import (
    PostgresServer,
    RedisServer,
    child_pids,
    missing_tools,
    postgres_server,
    redis_server,
    wait_until,
)

pytestmark = pytest.mark.resilience

PASSWORD = "a walk in the park at dawn"
WRONG = "not the right words at all"
# Limits that no test reaches unless it sets its own.
HIGH = "100000 per minute"
# Without an HTTP answer (refused, reset, timed out), a reply's status is 0.
NO_ANSWER = 0
# A request in an outage must fail within this many seconds, not hang.
FAIL_FAST = 5.0
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    """What one HTTP request got back, and how long it took."""

    status: int
    body: Any
    headers: Mapping[str, str]
    seconds: float
    started: float
    error: str = ""

    @property
    def code(self) -> str | None:
        """The problem code of an error body."""
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def problem(self) -> bool:
        """Whether the body is an application/problem+json document."""
        return self.headers.get("Content-Type", "").startswith("application/problem+json")


def send(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 15,
) -> Reply:
    """Send one JSON request; never raise, record a missing answer as status 0."""
    request, data = json_request(base, method, path, body, token)
    started = time.monotonic()
    try:
        with _opener.open(request, data=data, timeout=timeout) as response:
            status, raw, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), error.headers
    except (OSError, http.client.HTTPException) as error:
        elapsed = time.monotonic() - started
        return Reply(NO_ANSWER, None, {}, elapsed, started, f"{type(error).__name__}: {error}")
    elapsed = time.monotonic() - started
    decoded = decode_body(raw, headers.get("Content-Type", ""))
    return Reply(status, decoded, dict(headers.items()), elapsed, started)


def register(base: str, email: str) -> Reply:
    """POST /auth/register."""
    return send(base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD})


def login(base: str, email: str, password: str = PASSWORD) -> Reply:
    """POST /auth/login."""
    return send(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})


def me(base: str, token: str) -> Reply:
    """GET /users/me."""
    return send(base, "GET", "/api/v1/users/me", token=token)


def ready(base: str) -> Reply:
    """GET /health/ready."""
    return send(base, "GET", "/health/ready", timeout=10)


@dataclass
class Load:
    """Clients that each send requests back to back until stopped, keeping every reply."""

    clients: int
    request: Callable[[str], Reply]
    max_seconds: float = 60
    max_requests: int = 5000
    # Like a polite client, wait a little after an error before the next request.
    pause_after_error: float = 0.02
    sent: list[tuple[str, Reply]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self, index: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        for seq in range(self.max_requests // self.clients):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            label = f"c{index}n{seq}"
            reply = self.request(label)
            with self._lock:
                self.sent.append((label, reply))
            if not 200 <= reply.status < 300:
                time.sleep(self.pause_after_error)

    def __enter__(self) -> Load:
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def replies(self) -> list[tuple[str, Reply]]:
        """A snapshot of what was sent so far."""
        with self._lock:
            return list(self.sent)

    def wait_for(self, count: int, status: int, after: float = 0.0, timeout: float = 20) -> None:
        """Wait until ``count`` replies of ``status`` to requests started after ``after``."""

        def enough() -> bool:
            replies = self.replies()
            return sum(r.status == status and r.started > after for _, r in replies) >= count

        wait_until(enough, timeout=timeout)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this module's own."""
    if reason := missing_tools():
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A redis-server of this module's own."""
    if reason := missing_tools():
        pytest.skip(reason)
    with redis_server() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    """The name of a new, empty database on the module's PostgreSQL (started if stopped)."""
    postgres.ensure_running()
    name = f"warden_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    return name


@pytest.fixture
def deployments(
    postgres: PostgresServer,
    redis: RedisServer,
    database: str,
    tmp_path: Path,
) -> Iterator[Callable[..., Deployment]]:
    """Make production deployments over one fresh database and the module's Redis."""
    redis.ensure_running()
    url = postgres.url(database)
    made: list[Deployment] = []

    def make(**overrides: str) -> Deployment:
        settings = {
            "REDIS_URL": redis.url(),
            "RATELIMIT_DEFAULT": HIGH,
            "RATELIMIT_LOGIN": HIGH,
            "RATELIMIT_REGISTER": HIGH,
            "RATELIMIT_EMAIL": HIGH,
            **overrides,
        }
        folder = tmp_path / f"instance{len(made)}"
        folder.mkdir()
        deploy = Deployment(env=production_env(url, **settings), folder=folder)
        if not made:
            deploy.release()
        made.append(deploy)
        return deploy

    yield make
    for deploy in made:
        for process in deploy.processes:
            # A worker held up by a dead dependency must not stall the cleanup.
            try:
                process.stop(timeout=10)
            except subprocess.TimeoutExpired:
                process.stop(signal.SIGKILL, timeout=10)
        # gunicorn.conf.py's default metrics folder for this port.
        shutil.rmtree(Path(tempfile.gettempdir()) / f"warden-prometheus-{deploy.port}", True)


def query(postgres: PostgresServer, database: str, statement: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a test database."""
    with postgres.connect(database) as connection:
        return connection.execute(statement).fetchall()


def registration_rows(postgres: PostgresServer, database: str) -> dict[str, dict[str, int]]:
    """For each user's email: how many registration audit events and verify tokens it has."""
    rows = query(
        postgres,
        database,
        """
        SELECT u.email_normalized,
               (SELECT count(*) FROM audit_events a
                 WHERE a.user_id = u.id AND a.event_type = 'user.registered'),
               (SELECT count(*) FROM audit_events a
                 WHERE a.user_id = u.id AND a.event_type = 'email.verification_sent'),
               (SELECT count(*) FROM one_time_tokens t
                 WHERE t.user_id = u.id AND t.purpose = 'verify_email')
          FROM users u
        """,
    )
    return {
        email: {"registered": registered, "verification_sent": sent, "tokens": tokens}
        for email, registered, sent, tokens in rows
    }


def assert_complete(rows: dict[str, dict[str, int]]) -> None:
    """Every user row came with its audit events and verification token: no partial write."""
    complete = {"registered": 1, "verification_sent": 1, "tokens": 1}
    partial = {email: counts for email, counts in rows.items() if counts != complete}
    assert not partial, partial


def assert_no_server_errors(replies: list[Reply]) -> None:
    """No answer may be a 500: outages answer 503 problem+json or succeed."""
    errors = [(r.status, r.code, r.body) for r in replies if r.status >= 500 and r.status != 503]
    assert not errors, errors


def test_concurrent_registrations_of_one_email_create_one_account(
    deployments: Callable[..., Deployment], postgres: PostgresServer, database: str
) -> None:
    deploy = deployments(RATELIMIT_REGISTER="1000 per minute")
    deploy.start("web")
    deploy.wait_ready()
    email = "race@example.com"
    clients = 100
    start = threading.Barrier(clients)

    def attempt(_: int) -> Reply:
        start.wait(timeout=30)
        return register(deploy.base, email)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        replies = list(pool.map(attempt, range(clients)))

    assert Counter(r.status for r in replies) == {201: 1, 409: clients - 1}, Counter(
        (r.status, r.code, r.error) for r in replies
    )
    assert all(r.code == "email_taken" and r.problem for r in replies if r.status == 409)
    rows = registration_rows(postgres, database)
    assert list(rows) == [email]
    assert_complete(rows)
    assert "unhandled error" not in deploy.logs()


OUTAGES = ["stop-fast", "crash-immediate", "backend-killed"]


@pytest.mark.parametrize("outage", OUTAGES)
def test_database_outage_fails_fast_and_recovers_without_restart(
    outage: str,
    deployments: Callable[..., Deployment],
    postgres: PostgresServer,
    database: str,
) -> None:
    deploy = deployments()
    web = deploy.start("web")
    deploy.wait_ready()
    base = deploy.base
    assert register(base, "reader@example.com").status == 201
    reader = login(base, "reader@example.com").body["access_token"]
    down: dict[str, Reply] = {}
    with Load(4, lambda label: register(base, f"{label}@load.example.com")) as load:
        load.wait_for(10, 201)
        # Warm the reader's session marker and user copy in Redis, then take the database down.
        assert me(base, reader).status == 200
        went_down = time.monotonic()
        if outage == "backend-killed":
            # The OOM killer takes one backend: the postmaster ends every other connection and
            # runs crash recovery by itself; the web workers keep their pools of dead connections.
            (victim,) = query(
                postgres,
                database,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() LIMIT 1",
            )
            postgres.kill_backend(victim[0])
            wait_until(postgres.accepts_connections, timeout=10)
        else:
            postgres.stop("fast" if outage == "stop-fast" else "immediate")
            down["ready"] = ready(base)
            down["me"] = me(base, reader)
            load.wait_for(5, 503, after=went_down)
            time.sleep(max(0.0, went_down + 3 - time.monotonic()))
            postgres.start()
        came_back = time.monotonic()
        load.wait_for(1, 201, after=came_back, timeout=15)
        first_success = min(
            r.started + r.seconds
            for _, r in load.replies()
            if r.status == 201 and r.started > came_back
        )
        time.sleep(1.5)
    sent = load.replies()
    replies = [r for _, r in sent]

    # Success, or a fast problem+json 503: no hang, no dropped connection, no stray 500.
    assert_no_server_errors(replies)
    statuses = Counter((r.status, r.code) for r in replies if r.status != 500)
    assert set(statuses) <= {(201, None), (503, "service_unavailable")}, statuses
    assert all(r.problem for r in replies if r.status == 503)
    slowest = max(r.seconds for r in replies)
    assert slowest < FAIL_FAST, slowest
    if down:
        assert statuses[(503, "service_unavailable")] >= 5
        probe = down["ready"]
        assert (probe.status, probe.code) == (503, "not_ready"), probe
        assert probe.body["checks"] == {"database": "fail", "redis": "ok"}
        assert probe.seconds < FAIL_FAST
        # Served from the Redis marker and the cached user alone: no database needed.
        assert down["me"].status == 200, down["me"]
    # Recovered without a restart: the same processes serve, and succeed again at once.
    assert web.popen.poll() is None
    recovery = first_success - came_back
    assert recovery < 5, recovery
    late = [r for r in replies if r.started > first_success + 0.5]
    assert late and all(r.status == 201 for r in late), Counter(r.status for r in late)
    assert ready(base).status == 200

    # Every 201 is in the database, complete; a 503 or 500 may or may not have committed.
    rows = registration_rows(postgres, database)
    created = [label for label, r in sent if r.status == 201]
    assert not [label for label in created if f"{label}@load.example.com" not in rows]
    assert_complete(rows)
    failed = [label for label, r in sent if r.status != 201]
    committed = [label for label in failed if f"{label}@load.example.com" in rows]
    probed = f", readiness answered in {down['ready'].seconds:.2f} s" if down else ""
    print(
        f"\n{outage}: {len(sent)} requests, {len(created)} created,"
        f" {statuses[(503, 'service_unavailable')]} answered 503,"
        f" {len(committed)} failed answers committed anyway;"
        f" slowest {slowest:.2f} s, first success {recovery:.2f} s after the database was back"
        f"{probed}"
    )


def test_redis_outage_degrades_as_documented(
    deployments: Callable[..., Deployment],
    redis: RedisServer,
    inbox: Mailbox,
) -> None:
    deploy = deployments(LOGIN_FREE_FAILURES_PER_IP="2", RATELIMIT_EMAIL="2 per minute")
    web = deploy.start("web")
    worker = deploy.start("worker")
    deploy.wait_ready()
    base = deploy.base
    subject = "Confirm your email address"

    # Before: mail goes through the queue and the worker; the session marker is in Redis.
    assert register(base, "alice@example.com").status == 201
    inbox.wait_for("alice@example.com", subject, timeout=20)
    first = login(base, "alice@example.com").body
    assert me(base, first["access_token"]).status == 200
    client = redis.client()
    assert client.keys("warden:session:*")
    client.close()

    redis.stop()
    during: list[Reply] = []

    def keep(reply: Reply) -> Reply:
        during.append(reply)
        return reply

    probe = keep(ready(base))
    assert (probe.status, probe.code) == (503, "not_ready"), probe
    assert probe.body["checks"] == {"database": "ok", "redis": "fail"}
    # Authenticated requests and logins keep working: the database answers instead.
    for _ in range(4):
        assert keep(me(base, first["access_token"])).status == 200
    second = keep(login(base, "alice@example.com"))
    assert second.status == 200, second
    # Revocation fails closed: a logout in the outage is refused at once, by either worker.
    logout = keep(send(base, "POST", "/api/v1/auth/logout", token=first["access_token"]))
    assert logout.status == 204, logout
    for _ in range(4):
        revoked = keep(me(base, first["access_token"]))
        assert (revoked.status, revoked.code) == (401, "token_revoked")
    refreshed = keep(send(base, "POST", "/api/v1/auth/refresh", token=first["refresh_token"]))
    assert (refreshed.status, refreshed.code) == (401, "token_revoked")
    assert keep(me(base, second.body["access_token"])).status == 200
    # The login throttle fails open: failures past the free ones are not slowed down.
    for _ in range(6):
        failed = keep(login(base, "alice@example.com", WRONG))
        assert (failed.status, failed.code) == (401, "invalid_credentials"), failed
    assert keep(login(base, "alice@example.com")).status == 200
    # Rate limits count in each worker's memory: two workers allow at most twice the limit.
    limited = [
        keep(send(base, "POST", "/api/v1/auth/verify-email", {"token": "x" * 43})) for _ in range(8)
    ]
    outcomes = Counter((r.status, r.code) for r in limited)
    assert set(outcomes) <= {(400, "invalid_token"), (429, "rate_limited")}, outcomes
    assert 2 <= outcomes[(400, "invalid_token")] <= 4, outcomes
    # Registration works; its mail cannot be queued and is sent by the web process.
    assert keep(register(base, "bob@example.com")).status == 201
    inbox.wait_for("bob@example.com", subject, timeout=10)
    slowest = max(r.seconds for r in during)
    assert slowest < 2, [round(r.seconds, 2) for r in during]
    logs = web.output()
    assert "job queue unavailable, running locally" in logs
    assert "falling back to in-memory storage" in logs
    assert "unhandled error" not in logs

    redis.start()
    back = time.monotonic()
    wait_until(lambda: ready(base).status == 200, timeout=10, interval=0.1)
    ready_after = time.monotonic() - back
    # Redis came back empty: the revocation made in the outage holds (it is in the database).
    assert me(base, first["access_token"]).status == 401
    assert me(base, second.body["access_token"]).status == 200
    # The throttle works again: the third failure in a row locks the (account, address) pair.
    throttled = [login(base, "alice@example.com", WRONG) for _ in range(5)]
    assert (429, "login_throttled") in {(r.status, r.code) for r in throttled}
    # Mail goes through the queue again: the worker reconnected by itself.
    assert register(base, "carol@example.com").status == 201
    queued = time.monotonic()
    inbox.wait_for("carol@example.com", subject, timeout=30)
    assert worker.popen.poll() is None
    print(
        f"\nredis outage: slowest request {slowest:.2f} s, ready {ready_after:.2f} s after"
        f" Redis was back, queued mail delivered {time.monotonic() - queued:.2f} s after"
    )


def test_redis_stopped_under_load_fails_no_request(
    deployments: Callable[..., Deployment], redis: RedisServer
) -> None:
    # A slower hash keeps logins in flight while Redis goes away.
    deploy = deployments(BCRYPT_ROUNDS="10")
    deploy.start("web")
    deploy.wait_ready()
    base = deploy.base
    assert register(base, "erin@example.com").status == 201
    token = login(base, "erin@example.com").body["access_token"]

    def work(label: str) -> Reply:
        half = label.startswith(("c0", "c1"))
        return login(base, "erin@example.com") if half else me(base, token)

    with Load(4, work) as load:
        load.wait_for(10, 200)
        went_down = time.monotonic()
        redis.stop()
        load.wait_for(10, 200, after=went_down)
        came_back = time.monotonic()
        redis.start()
        load.wait_for(10, 200, after=came_back)
    replies = [r for _, r in load.replies()]
    assert_no_server_errors(replies)
    assert {r.status for r in replies} <= {200}
    slowest = max(r.seconds for r in replies)
    assert slowest < 2, slowest
    print(f"\nredis stopped under load: {len(replies)} requests, slowest {slowest:.2f} s")


def test_redis_hung_slows_requests_within_bounds(
    deployments: Callable[..., Deployment], redis: RedisServer, inbox: Mailbox
) -> None:
    deploy = deployments()
    web = deploy.start("web")
    deploy.wait_ready()
    base = deploy.base
    assert register(base, "fay@example.com").status == 201
    token = login(base, "fay@example.com").body["access_token"]
    assert redis.process is not None
    # SIGSTOP: connections are accepted by the kernel but nothing answers (a stuck server).
    redis.process.send_signal(signal.SIGSTOP)
    try:
        timings = {
            "ready": ready(base),
            "me": me(base, token),
            "login": login(base, "fay@example.com"),
            "register": register(base, "gus@example.com"),
        }
    finally:
        redis.process.send_signal(signal.SIGCONT)
    assert (timings["ready"].status, timings["ready"].code) == (503, "not_ready")
    assert timings["ready"].body["checks"] == {"database": "ok", "redis": "fail"}
    assert [timings[name].status for name in ("me", "login", "register")] == [200, 200, 201]
    # Each Redis call gives up after 0.5 s: slower, far from gunicorn's 30 s worker timeout.
    assert max(r.seconds for r in timings.values()) < 10, timings
    inbox.wait_for("gus@example.com", "Confirm your email address", timeout=20)
    wait_until(lambda: ready(base).status == 200, timeout=10, interval=0.1)
    assert "unhandled error" not in web.output()
    print("\nredis hung: " + ", ".join(f"{k} {r.seconds:.2f} s" for k, r in timings.items()))


def test_readiness_fails_fast_when_postgresql_hangs(
    deployments: Callable[..., Deployment], postgres: PostgresServer
) -> None:
    """SIGSTOP: the kernel still accepts and acknowledges, nothing answers, no timeout fires.

    Both workers' pools hold connections from the warm-up; a probe on one of them used to
    wait until gunicorn killed the worker (30 s).
    """
    deploy = deployments()
    web = deploy.start("web")
    deploy.wait_ready()
    for _ in range(8):
        assert ready(deploy.base).status == 200
    assert postgres.process is not None
    # The postmaster first, so it forks no new backend; then the backends there are (one
    # that has just ended, such as a probe's, is gone: nothing to stop).
    stopped = [postgres.process.pid]
    os.kill(postgres.process.pid, signal.SIGSTOP)
    for pid in child_pids(postgres.process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
    try:
        replies = [ready(deploy.base) for _ in range(4)]
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert [(r.status, r.code) for r in replies] == [(503, "not_ready")] * 4
    assert all(r.body["checks"]["database"] == "fail" for r in replies)
    assert max(r.seconds for r in replies) < 5, [r.seconds for r in replies]
    wait_until(lambda: ready(deploy.base).status == 200, timeout=15, interval=0.1)
    assert "WORKER TIMEOUT" not in web.output()


def test_killed_gunicorn_worker_is_replaced_without_partial_writes(
    deployments: Callable[..., Deployment],
    postgres: PostgresServer,
    redis: RedisServer,
    database: str,
) -> None:
    # A slower hash keeps each worker busy inside a registration most of the time.
    deploy = deployments(BCRYPT_ROUNDS="10")
    web = deploy.start("web")
    deploy.wait_ready()
    master = web.popen.pid
    wait_until(lambda: len(child_pids(master)) == 2, timeout=10)
    before = child_pids(master)
    clients = 4
    with Load(clients, lambda label: register(deploy.base, f"{label}@kill.example.com")) as load:
        load.wait_for(10, 201)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        replaced_in = wait_until(
            lambda: len(child_pids(master)) == 2 and victim not in child_pids(master),
            timeout=15,
        )
        load.wait_for(10, 201, after=killed_at + replaced_in)
    sent = load.replies()

    after = child_pids(master)
    assert len(after) == 2 and victim not in after and before[1] in after
    failed = [(label, r) for label, r in sent if r.status != 201]
    # Only what the killed worker had in flight fails: a sync worker serves one request.
    assert len(failed) <= clients, [(r.status, r.error) for _, r in failed]
    assert all(r.status == NO_ANSWER for _, r in failed), [(r.status, r.code) for _, r in failed]
    rows = registration_rows(postgres, database)
    created = {f"{label}@kill.example.com" for label, r in sent if r.status == 201}
    assert created <= set(rows)
    assert set(rows) <= {f"{label}@kill.example.com" for label, _ in sent}
    assert_complete(rows)
    # Each answered registration queued its mail (no worker runs here to take them).
    client = redis.client()
    jobs = int(client.llen("rq:queue:warden"))
    client.close()
    assert len(created) <= jobs <= len(rows), (len(created), jobs, len(rows))
    assert f"Worker (pid:{victim}) was sent SIGKILL" in web.output()
    print(
        f"\nworker kill: {len(sent)} requests, {len(failed)} without an answer"
        f" ({len(rows) - len(created)} of them committed, {jobs - len(created)} with their"
        f" mail queued), replaced in {replaced_in:.2f} s"
    )


def test_two_instances_share_revocations_and_rate_limits(
    deployments: Callable[..., Deployment],
) -> None:
    first = deployments(RATELIMIT_LOGIN="3 per minute")
    second = deployments(RATELIMIT_LOGIN="3 per minute")
    assert first.port != second.port
    first.start("web")
    second.start("web")
    first.wait_ready()
    second.wait_ready()
    a, b = first.base, second.base
    assert register(a, "dana@example.com").status == 201

    # Logins alternate between the instances; the fourth one is over the shared limit.
    logins = [login(base, "dana@example.com") for base in (a, b, a, b)]
    assert [r.status for r in logins] == [200, 200, 200, 429], [r.body for r in logins]
    assert logins[3].code == "rate_limited" and int(logins[3].headers["Retry-After"]) > 0

    # A logout on one instance is refused on the other at once, by either of its workers.
    tokens = logins[0].body
    assert me(b, tokens["access_token"]).status == 200
    assert send(a, "POST", "/api/v1/auth/logout", token=tokens["access_token"]).status == 204
    for _ in range(4):
        reply = me(b, tokens["access_token"])
        assert (reply.status, reply.code) == (401, "token_revoked")
    assert me(b, logins[1].body["access_token"]).status == 200


def send_from(source: str, base: str, path: str, body: dict[str, str]) -> Reply:
    """POST JSON from the loopback address ``source``, as a client elsewhere would."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15, source_address=(source, 0))
    started = time.monotonic()
    try:
        connection.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        raw, headers = response.read(), dict(response.getheaders())
    finally:
        connection.close()
    decoded = decode_body(raw, headers.get("Content-Type", ""))
    return Reply(response.status, decoded, headers, time.monotonic() - started, started)


def login_from(source: str, base: str, email: str, password: str, **tokens: str) -> Reply:
    """POST /auth/login from ``source``, with a device or unlock token if given."""
    body = {"email": email, "password": password, **tokens}
    return send_from(source, base, "/api/v1/auth/login", body)


def two_instances(deployments: Callable[..., Deployment], **settings: str) -> tuple[str, str]:
    """Two production instances over one database and Redis, without a proxy in front."""
    first = deployments(TRUSTED_PROXIES="0", **settings)
    second = deployments(TRUSTED_PROXIES="0", **settings)
    first.start("web")
    first.start("worker")
    second.start("web")
    first.wait_ready()
    second.wait_ready()
    return first.base, second.base


def test_guessing_from_many_addresses_does_not_lock_the_owner_out(
    deployments: Callable[..., Deployment], inbox: Mailbox
) -> None:
    a, b = two_instances(deployments)
    owner = "owner@example.com"
    assert register(a, owner).status == 201
    known = login_from("127.0.0.2", a, owner, PASSWORD)
    assert known.status == 200, known
    device = known.body["device_token"]

    for index in range(200):
        guess = login_from(f"127.0.1.{index + 1}", (a, b)[index % 2], owner, WRONG)
        assert guess.status in (401, 429), guess
        # Past 24 guesses, keep guessing as each lock ends until one lasts 8 s, so the
        # checks below run inside one lock.
        if guess.status == 429 and index >= 24:
            wait = int(guess.headers["Retry-After"])
            if wait >= 8:
                break
            time.sleep(wait)
    # An unknown device is refused on both instances even with the right password ...
    for base in (a, b):
        refused = login_from("127.0.2.1", base, owner, PASSWORD)
        assert (refused.status, refused.code) == (429, "login_throttled"), refused
        assert "access_token" not in refused.body
    # ... while the owner's device gets in, from any address, on either instance.
    for source, base in (("127.0.2.2", b), ("127.0.2.3", a)):
        trusted = login_from(source, base, owner, PASSWORD, device_token=device)
        assert trusted.status == 200, trusted
    # Its successes handed the guessers no fresh failures.
    still = login_from("127.0.1.99", b, owner, WRONG)
    assert (still.status, still.code) == (429, "login_throttled"), still

    # The owner was mailed a way in for the new device; it needs the password too.
    unlock = inbox.wait_for(owner, "Sign-in attempts", timeout=20).token
    wrong = login_from("127.0.2.1", b, owner, WRONG, unlock_token=unlock)
    assert (wrong.status, wrong.code) == (401, "invalid_credentials"), wrong
    unlocked = login_from("127.0.2.1", b, owner, PASSWORD, unlock_token=unlock)
    assert unlocked.status == 200, unlocked
    new_device = unlocked.body["device_token"]
    assert login_from("127.0.2.1", a, owner, PASSWORD, device_token=new_device).status == 200

    # A completed password reset lifts the lock for every device.
    assert send(a, "POST", "/api/v1/auth/password/forgot", {"email": owner}).status == 202
    token = inbox.wait_for(owner, "Reset your password", timeout=20).token
    new_password = "a different walk at dusk"
    reset = send(
        b, "POST", "/api/v1/auth/password/reset", {"token": token, "new_password": new_password}
    )
    assert reset.status == 204, reset
    assert login_from("127.0.3.1", a, owner, new_password).status == 200


def test_one_guess_per_lock_window_over_addresses_and_instances(
    deployments: Callable[..., Deployment], postgres: PostgresServer, database: str
) -> None:
    a, b = two_instances(
        deployments, LOGIN_FREE_FAILURES_PER_ACCOUNT="2", LOGIN_BACKOFF_CAP_ACCOUNT="1"
    )
    victim = "victim@example.com"
    assert register(a, victim).status == 201
    for index in range(3):
        assert login_from(f"127.0.4.{index + 1}", a, victim, WRONG).status == 401
    assert login_from("127.0.4.9", b, victim, WRONG).code == "login_throttled"

    def checked() -> int:
        statement = (
            "SELECT count(*) FROM audit_events"
            " WHERE event_type IN ('login.failed', 'login.succeeded')"
        )
        return int(query(postgres, database, statement)[0][0])

    before = checked()
    time.sleep(1.2)  # the lock of 1 s ends
    start = threading.Barrier(16)

    def guess(index: int) -> Reply:
        start.wait(timeout=30)
        return login_from(f"127.0.5.{index + 1}", (a, b)[index % 2], victim, WRONG)

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(guess, range(16)))
    outcomes = Counter((r.status, r.code) for r in replies)
    assert outcomes == {(401, "invalid_credentials"): 1, (429, "login_throttled"): 15}, outcomes
    assert checked() - before == 1
