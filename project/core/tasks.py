"""Work done off the request path: an RQ job with Redis, else after the response is sent."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import partial
from typing import Any

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from project.core import context
from project.extensions import db, redis_client

logger = logging.getLogger("warden.tasks")

QUEUE_NAME = "warden"
# RQ retries a failed job after 10 s, 30 s, 1 min, 5 min and 15 min, then keeps it in its
# failed-job registry: a failed send is never silently dropped.
JOB_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
# Two attempts at MAIL_TIMEOUT (10 s) each stay inside gunicorn's 30 s worker timeout.
LOCAL_ATTEMPTS = 2

_pending: ContextVar[list[Callable[[], None]] | None] = ContextVar("pending_tasks", default=None)


def queue() -> Queue | None:
    """The current app's job queue, or None without Redis."""
    connection = redis_client.queue_connection
    return None if connection is None else Queue(QUEUE_NAME, connection=connection)


def run_job(func: Callable[..., Any], *args: Any) -> None:
    """Run one queued job in a clean state: own database session, no leftover context."""
    try:
        func(*args)
    finally:
        db.session.remove()
        context.clear()


def defer(func: Callable[..., Any], *args: Any, description: str | None = None) -> None:
    """Run ``func(*args)`` without making the caller wait for it.

    With Redis it becomes an RQ job (durable, retried by the worker process). Without, it
    runs in this process after the response has been sent, retried a few times; outside a
    request it runs now.
    """
    jobs = queue()
    if jobs is not None:
        try:
            # The description is what RQ logs: never the arguments, which may hold links.
            jobs.enqueue(
                run_job,
                func,
                *args,
                retry=JOB_RETRY,
                job_timeout=60,
                description=description or getattr(func, "__qualname__", "task"),
            )
            return
        except RedisError as exc:
            logger.warning("job queue unavailable, running locally: %s", type(exc).__name__)
    call = partial(run_with_retries, current_app._get_current_object(), func, args)  # type: ignore[attr-defined]
    pending = _pending.get()
    if pending is None:
        call()
    else:
        pending.append(call)


def schedule_every(func: Callable[[], Any], *, every: int, name: str) -> None:
    """Have the worker's scheduler run ``func()`` at the next multiple of ``every`` seconds.

    The job's id names that moment, so instances scheduling the same run make one job;
    ``func`` schedules the following one itself. Without Redis there is no schedule.
    """
    jobs = queue()
    if jobs is None:
        return
    slot = (int(time.time()) // every + 1) * every
    # A DuplicateJobError says another instance has scheduled this run.
    with contextlib.suppress(DuplicateJobError):
        jobs.enqueue_at(
            datetime.fromtimestamp(slot, UTC),
            run_job,
            func,
            job_id=f"{name}-{slot}",
            unique=True,
            # A run longer than the interval is cut off; the next one continues its work.
            job_timeout=every,
            description=name,
        )


def run_with_retries(app: Flask, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run a task inside an app context, retrying with backoff; log (never raise) a failure."""
    name = getattr(func, "__name__", "task")
    for attempt in range(1, LOCAL_ATTEMPTS + 1):
        try:
            with app.app_context():
                func(*args)
            return
        except Exception as exc:  # any failure is retried, then logged
            logger.warning("task %s failed (attempt %d): %s", name, attempt, type(exc).__name__)
            if attempt < LOCAL_ATTEMPTS:
                time.sleep(2 ** (attempt - 1))
    logger.error("task %s failed after %d attempts", name, LOCAL_ATTEMPTS)


def begin_request() -> list[Callable[[], None]]:
    """Start collecting the tasks this request defers; return the list to run later."""
    pending: list[Callable[[], None]] = []
    _pending.set(pending)
    return pending


def end_request() -> None:
    """Stop collecting; tasks deferred from now on run at once."""
    _pending.set(None)


def run_all(pending: list[Callable[[], None]]) -> None:
    """Run collected tasks (called once the response is closed)."""
    while pending:
        pending.pop(0)()
