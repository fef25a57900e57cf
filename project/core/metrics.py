"""Prometheus metrics; under gunicorn they are shared by workers through files.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it), every worker writes its
samples to that directory and /metrics sums them; without it, one process's registry.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "warden_http_requests_total",
    "HTTP requests answered, by route rule, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "warden_http_request_duration_seconds",
    "Time to answer HTTP requests, by route rule and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@functools.cache
def _request_children(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    # A child per label combination; labels() takes a lock and builds the key each time.
    return HTTP_REQUESTS.labels(route, method, str(status)), HTTP_LATENCY.labels(route, method)


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count an answered request and its duration."""
    counter, histogram = _request_children(route, method, status)
    counter.inc()
    histogram.observe(seconds)


LOGINS = Counter("warden_logins_total", "Login attempts by result.", ["result"])
LOGIN_THROTTLED = Counter("warden_login_throttled_total", "Logins refused by the backoff.")
REFRESH_REUSE = Counter(
    "warden_refresh_reuse_detected_total", "Rotated refresh tokens presented again."
)
TOKENS_ISSUED = Counter("warden_tokens_issued_total", "Token pairs issued, by cause.", ["cause"])
REVOCATIONS = Counter("warden_session_revocations_total", "Sessions revoked, by cause.", ["cause"])
HASHING_BUSY = Counter(
    "warden_hashing_busy_total", "Requests refused because every hashing slot was in use."
)
RATE_LIMITED = Counter("warden_rate_limit_hits_total", "Requests refused by a rate limit.")
MAILS = Counter("warden_mails_total", "Mails by outcome: queued, sent or failed.", ["outcome"])
USER_CACHE = Counter("warden_user_cache_total", "User cache lookups by result.", ["result"])
RETENTION_REMOVED = Counter(
    "warden_retention_rows_removed_total", "Rows retention deleted, by job.", ["job"]
)
RETENTION_DURATION = Histogram(
    "warden_retention_duration_seconds",
    "Time a retention job ran, by job.",
    ["job"],
    buckets=(0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0),
)
# Timestamps only grow: across processes the largest is the latest.
RETENTION_LAST_SUCCESS = Gauge(
    "warden_retention_last_success_timestamp_seconds",
    "When a retention job last finished, by job (Unix time).",
    ["job"],
    multiprocess_mode="max",
)


def render() -> tuple[bytes, str]:
    """The exposition text of every metric and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
