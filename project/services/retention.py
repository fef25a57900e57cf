"""Retention: ended sessions, spent one-time tokens and old audit events leave by themselves.

Each job deletes in batches of RETENTION_BATCH_SIZE rows, one transaction each with a
pause between, so no statement holds locks or bloats the table for long; this module
commits once per batch rather than once per run for that reason. One runner per job at a
time, whichever instance or command starts it (``job_locks``). On PostgreSQL the audit
trail is partitioned by month: the job creates months ahead and drops whole months past
the retention period instead of deleting their rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from config import Settings
from project.core import metrics, tasks
from project.core.settings import current_settings
from project.extensions import db
from project.models.types import utcnow
from project.repositories import job_locks
from project.repositories.audit_events import AuditEventRepository
from project.repositories.audit_partitions import (
    AuditPartitionRepository,
    default_partition,
    month_start,
    next_month,
)
from project.repositories.one_time_tokens import OneTimeTokenRepository
from project.repositories.passkeys import ChallengeRepository
from project.repositories.sessions import SessionRepository
from project.repositories.sign_in_challenges import SignInChallengeRepository

logger = logging.getLogger(__name__)
JOBS = ("sessions", "one_time_tokens", "audit_events", "challenges")
# A runner renews its lease after every batch; one that dies frees the job this much later.
LOCK_TTL = 120
SCHEDULE_NAME = "warden-retention"
KeyT = TypeVar("KeyT")


@dataclass
class JobRun:
    """What one job did: rows removed, batches, partitions; ``ran`` False when skipped."""

    job: str
    ran: bool = True
    removed: int = 0
    batches: int = 0
    seconds: float = 0.0
    partitions_created: list[str] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)


@dataclass
class _Batches:
    lease: job_locks.JobLock
    size: int
    pause: float
    run: JobRun

    def delete(
        self, select: Callable[[int], Sequence[KeyT]], delete: Callable[[list[KeyT]], int]
    ) -> int:
        """Delete what ``select`` finds, one committed batch at a time, until it finds none."""
        removed = 0
        while True:
            keys = list(select(self.size))
            if not keys:
                return removed
            removed += delete(keys)
            db.session.commit()
            self.run.batches += 1
            self.lease.keep()
            if len(keys) < self.size:
                return removed
            time.sleep(self.pause)


def run(*, jobs: Sequence[str] = JOBS, now: datetime | None = None) -> list[JobRun]:
    """Run each retention job once, as of ``now``; return what each did."""
    settings = current_settings()
    moment = now or utcnow()
    return [_run_job(name, moment, settings) for name in jobs]


def run_scheduled() -> None:
    """The worker's periodic run: every job, then the next run on the schedule."""
    try:
        run()
    finally:
        schedule()


def schedule() -> None:
    """Have the worker's scheduler run the jobs at the next RETENTION_INTERVAL boundary."""
    tasks.schedule_every(
        run_scheduled, every=current_settings().RETENTION_INTERVAL, name=SCHEDULE_NAME
    )


def _run_job(name: str, now: datetime, settings: Settings) -> JobRun:
    record = JobRun(job=name)
    started = time.perf_counter()
    with job_locks.hold(f"retention:{name}", ttl=LOCK_TTL) as lease:
        if lease is None:
            logger.info("retention job skipped: another runner holds it", extra={"job": name})
            return JobRun(job=name, ran=False)
        batches = _Batches(
            lease, settings.RETENTION_BATCH_SIZE, settings.RETENTION_BATCH_PAUSE_MS / 1000, record
        )
        try:
            record.removed = _JOBS[name](now, settings, batches)
        except BaseException:
            # Batches committed so far stay deleted; the caller reports the failure (the
            # worker logs the failed job, the command prints one line).
            db.session.rollback()
            raise
    record.seconds = time.perf_counter() - started
    metrics.RETENTION_REMOVED.labels(job=name).inc(record.removed)
    metrics.RETENTION_DURATION.labels(job=name).observe(record.seconds)
    metrics.RETENTION_LAST_SUCCESS.labels(job=name).set(time.time())
    logger.info(
        "retention job finished",
        extra={
            "job": name,
            "removed": record.removed,
            "batches": record.batches,
            "seconds": round(record.seconds, 3),
            "partitions_created": record.partitions_created or None,
            "partitions_dropped": record.partitions_dropped or None,
        },
    )
    return record


def _walk(fetch: Callable[..., list[uuid.UUID]]) -> Callable[[int], list[uuid.UUID]]:
    """A batch selector that continues along the primary key where the last batch ended."""
    after: list[uuid.UUID | None] = [None]

    def select(limit: int) -> list[uuid.UUID]:
        ids = fetch(after=after[0], limit=limit)
        if ids:
            after[0] = ids[-1]
        return ids

    return select


def _sessions(now: datetime, settings: Settings, batches: _Batches) -> int:
    """Sessions revoked or expired more than SESSION_RETENTION_DAYS ago go."""
    cutoff = now - timedelta(days=settings.SESSION_RETENTION_DAYS)
    sessions = SessionRepository()
    return batches.delete(_walk(partial(sessions.ended_before, cutoff)), sessions.delete_ids)


def _one_time_tokens(now: datetime, settings: Settings, batches: _Batches) -> int:
    """Tokens used or expired more than TOKEN_RETENTION_DAYS ago go."""
    cutoff = now - timedelta(days=settings.TOKEN_RETENTION_DAYS)
    tokens = OneTimeTokenRepository()
    return batches.delete(_walk(partial(tokens.spent_before, cutoff)), tokens.delete_ids)


def _audit_events(now: datetime, settings: Settings, batches: _Batches) -> int:
    """Events older than AUDIT_RETENTION_DAYS go; on PostgreSQL with their whole month.

    There the job first creates this month's partition and AUDIT_PARTITIONS_AHEAD more,
    then drops every month that ended before the cut-off; rows in the default partition
    (no month covered them when written) are deleted in batches.
    """
    cutoff = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    events = AuditEventRepository()
    partitions = AuditPartitionRepository()
    if not partitions.supported():
        return batches.delete(
            lambda limit: events.older_than(cutoff, limit=limit), events.delete_keys
        )
    existing = partitions.months()
    have = {partition.start for partition in existing}
    start = month_start(now)
    for _ in range(settings.AUDIT_PARTITIONS_AHEAD + 1):
        if start not in have:
            batches.run.partitions_created.append(partitions.create(start).name)
            db.session.commit()
            batches.lease.keep()
        start = next_month(start)
    removed = 0
    for partition in existing:
        if partition.end <= cutoff:
            removed += partitions.drop(partition)
            db.session.commit()
            batches.run.partitions_dropped.append(partition.name)
            batches.lease.keep()
    strays = default_partition()
    return removed + batches.delete(
        lambda limit: events.older_than(cutoff, limit=limit, table=strays),
        partial(events.delete_keys, table=strays),
    )


def _challenges(now: datetime, settings: Settings, batches: _Batches) -> int:
    """Expired second-factor and passkey challenges go at once: nothing can redeem them.

    Sign-ins clear their own user's, and ceremonies the expired ones they find; this sweeps
    what abandoned sign-ins leave. They live minutes, so one statement each stays small.
    """
    removed = SignInChallengeRepository().delete_expired(now=now)
    removed += ChallengeRepository().delete_expired(now=now)
    db.session.commit()
    batches.run.batches += 1
    return removed


_JOBS: dict[str, Callable[[datetime, Settings, _Batches], int]] = {
    "sessions": _sessions,
    "one_time_tokens": _one_time_tokens,
    "audit_events": _audit_events,
    "challenges": _challenges,
}
