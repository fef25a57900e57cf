"""Retention: what each job keeps and deletes, in batches, by one runner at a time."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, text

from project.core import tasks
from project.core.settings import SETTINGS_KEY, current_settings
from project.extensions import db, redis_client
from project.models import (
    AuditEvent,
    AuditEventType,
    CeremonyKind,
    OneTimeToken,
    Session,
    SignInChallenge,
    TokenPurpose,
    User,
    WebAuthnChallenge,
)
from project.models.types import utcnow
from project.repositories import job_locks
from project.repositories.audit_partitions import (
    AuditPartitionRepository,
    month_start,
    next_month,
    partition_name,
)
from project.services import retention
from tests.conftest import is_postgres

NOW = utcnow()
DAY = timedelta(days=1)
needs_postgres = pytest.mark.skipif(not is_postgres(), reason="partitions need PostgreSQL")


@pytest.fixture(autouse=True)
def _no_months_left(app: Flask) -> Iterator[None]:
    """Leave the shared schema with the default partition only."""
    yield
    if is_postgres():
        _drop_months(app)


@pytest.fixture
def tuned(app: Flask) -> Iterator[Callable[..., None]]:
    """Change some settings of the shared app for one test."""
    original = app.extensions[SETTINGS_KEY]

    def tune(**overrides: object) -> None:
        app.extensions[SETTINGS_KEY] = dataclasses.replace(original, **overrides)

    yield tune
    app.extensions[SETTINGS_KEY] = original


def _session(user: User, *, expires: datetime, revoked: datetime | None = None) -> Session:
    return Session(
        user_id=user.id,
        refresh_jti=uuid.uuid4().hex,
        created_at=expires - 30 * DAY,
        expires_at=expires,
        revoked_at=revoked,
    )


def _token(user: User, *, expires: datetime, used: datetime | None = None) -> OneTimeToken:
    return OneTimeToken(
        token_hash=uuid.uuid4().hex,
        purpose=TokenPurpose.RESET_PASSWORD,
        user_id=user.id,
        created_at=expires - DAY,
        expires_at=expires,
        used_at=used,
    )


def _event(moment: datetime) -> AuditEvent:
    return AuditEvent(event_type=AuditEventType.LOGOUT, occurred_at=moment, details={})


def _store(app: Flask, *rows: object) -> dict[str, object]:
    """Add rows; return them by a readable name (their position)."""
    with app.app_context():
        db.session.add_all(rows)
        db.session.commit()
        ids = {f"row{n}": getattr(row, "id") for n, row in enumerate(rows)}  # noqa: B009
        db.session.expunge_all()
    return ids


def _ids(app: Flask, model: type) -> set[uuid.UUID]:
    with app.app_context():
        return set(db.session.scalars(select(model.id)))


def _run(app: Flask, *jobs: str, now: datetime = NOW) -> list[retention.JobRun]:
    with app.app_context():
        return retention.run(jobs=jobs or retention.JOBS, now=now)


def test_sessions_go_a_retention_period_after_they_end(
    app: Flask, make_user: Callable[..., User]
) -> None:
    user = make_user()
    keep = 30 * DAY  # SESSION_RETENTION_DAYS
    rows = _store(
        app,
        _session(user, expires=NOW + DAY),  # live
        _session(user, expires=NOW - keep + DAY),  # expired 29 days ago
        _session(user, expires=NOW - keep),  # expired exactly 30 days ago: the boundary stays
        _session(user, expires=NOW - keep - DAY),  # expired 31 days ago: goes
        _session(user, expires=NOW + DAY, revoked=NOW - keep + DAY),  # revoked 29 days ago
        _session(user, expires=NOW + DAY, revoked=NOW - keep - DAY),  # revoked 31 days ago: goes
        _session(user, expires=NOW - keep - DAY, revoked=NOW - 100 * DAY),  # both long ago
    )
    (done,) = _run(app, "sessions")
    assert done.ran and done.removed == 3
    assert _ids(app, Session) == {rows[name] for name in ("row0", "row1", "row2", "row4")}


def test_one_time_tokens_go_a_retention_period_after_use_or_expiry(
    app: Flask, make_user: Callable[..., User]
) -> None:
    user = make_user()
    keep = 7 * DAY  # TOKEN_RETENTION_DAYS
    rows = _store(
        app,
        _token(user, expires=NOW + DAY),  # usable
        _token(user, expires=NOW - keep + DAY),  # expired 6 days ago
        _token(user, expires=NOW - keep),  # the boundary stays
        _token(user, expires=NOW - keep - DAY),  # expired 8 days ago: goes
        _token(user, expires=NOW + DAY, used=NOW - keep + DAY),  # used 6 days ago
        _token(user, expires=NOW + DAY, used=NOW - keep - DAY),  # used 8 days ago: goes
    )
    (done,) = _run(app, "one_time_tokens")
    assert done.removed == 2
    assert _ids(app, OneTimeToken) == {rows[name] for name in ("row0", "row1", "row2", "row4")}


def test_audit_events_go_after_the_retention_period(app: Flask, tuned: Callable[..., None]) -> None:
    tuned(AUDIT_RETENTION_DAYS=5)
    now = datetime(2026, 6, 20, 12, tzinfo=UTC)
    cutoff = now - 5 * DAY
    rows = _store(
        app,
        _event(now - DAY),
        _event(cutoff),  # the boundary stays
        _event(cutoff - timedelta(seconds=1)),
        _event(now - 400 * DAY),
    )
    (done,) = _run(app, "audit_events", now=now)
    kept = {rows["row0"], rows["row1"]}
    if is_postgres():
        # An event goes with its month, and June is not over: the row moved from the
        # default partition into June's. The year-old one, in no month's partition, went.
        kept.add(rows["row2"])
    assert done.removed == 4 - len(kept)
    assert _ids(app, AuditEvent) == kept


def test_deletion_goes_in_batches_of_the_configured_size(
    app: Flask, make_user: Callable[..., User], tuned: Callable[..., None]
) -> None:
    tuned(RETENTION_BATCH_SIZE=2, RETENTION_BATCH_PAUSE_MS=0)
    user = make_user()
    _store(app, *[_session(user, expires=NOW - 60 * DAY) for _ in range(7)])
    _store(app, _session(user, expires=NOW + DAY))
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("DELETE", "COMMIT")):
            statements.append(statement.split()[0].upper())

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", seen)
    event.listen(engine, "commit", lambda _conn: statements.append("COMMIT"))
    try:
        (done,) = _run(app, "sessions")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert done.removed == 7 and done.batches == 4
    # Each batch deletes and commits before the next one starts.
    assert statements[:8] == ["DELETE", "COMMIT"] * 4
    assert len(_ids(app, Session)) == 1


def test_two_workers_at_once_run_a_job_once(
    app_factory: Callable[..., Flask], make_user: Callable[..., User]
) -> None:
    # Batches of one with a pause: the run lasts long enough for the other to contend.
    workers = [app_factory(RETENTION_BATCH_SIZE=1, RETENTION_BATCH_PAUSE_MS=50) for _ in range(2)]
    with workers[0].app_context():
        user = User(email="old@example.com", email_normalized="old@example.com", password_hash="x")
        db.session.add(user)
        db.session.commit()
        db.session.add_all([_session(user, expires=NOW - 60 * DAY) for _ in range(6)])
        db.session.commit()
    barrier = threading.Barrier(2)
    results: list[retention.JobRun] = []

    def work(instance: Flask) -> None:
        barrier.wait()
        results.extend(_run(instance, "sessions"))

    threads = [threading.Thread(target=work, args=(instance,)) for instance in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(done.ran for done in results) == [False, True]
    assert sum(done.removed for done in results) == 6
    # Released at the end: the next run runs.
    (again,) = _run(workers[1], "sessions")
    assert again.ran and again.removed == 0


def test_a_held_lock_is_released_only_by_its_holder(app: Flask) -> None:
    with app.app_context():
        with job_locks.hold("retention:test", ttl=5) as first:
            assert first is not None
            with job_locks.hold("retention:test", ttl=5) as second:
                assert second is None
            first.keep()
        with job_locks.hold("retention:test", ttl=5) as third:
            assert third is not None


def test_a_runner_whose_lease_ran_out_stops(app: Flask) -> None:
    with app.app_context():
        if redis_client.client is None:
            pytest.skip("leases need Redis (TEST_REDIS_URL)")
        with job_locks.hold("retention:slow", ttl=1) as slow:
            assert slow is not None
            time.sleep(1.2)  # the lease expires: another runner may take the job
            with job_locks.hold("retention:slow", ttl=5) as other:
                assert other is not None
                with pytest.raises(job_locks.LockLostError):
                    slow.keep()
            # The first runner's release leaves the other's lock alone (checked above).


def test_the_worker_schedules_one_run_per_interval_whoever_asks(app: Flask) -> None:
    with app.app_context():
        jobs = tasks.queue()
        if jobs is None:
            pytest.skip("the schedule needs Redis (TEST_REDIS_URL)")
        retention.schedule()
        retention.schedule()  # a second worker starting
        scheduled = ScheduledJobRegistry(queue=jobs).get_job_ids()
        assert len(scheduled) == 1 and scheduled[0].startswith(retention.SCHEDULE_NAME)
        interval = current_settings().RETENTION_INTERVAL
        assert int(scheduled[0].rsplit("-", 1)[1]) % interval == 0
        job = jobs.fetch_job(scheduled[0])
        assert job is not None and job.args == (retention.run_scheduled,)


def test_the_worker_runs_a_scheduled_run_which_schedules_the_next(
    app: Flask, make_user: Callable[..., User], tuned: Callable[..., None]
) -> None:
    with app.app_context():
        jobs = tasks.queue()
    if jobs is None:
        pytest.skip("the schedule needs Redis (TEST_REDIS_URL)")
    tuned(RETENTION_INTERVAL=1)
    user = make_user()
    _store(app, _session(user, expires=NOW - 60 * DAY), _session(user, expires=NOW + DAY))
    with app.app_context():
        retention.schedule()
        first = ScheduledJobRegistry(queue=jobs).get_job_ids()
        time.sleep(1.1)  # the run is due
        SimpleWorker([jobs], connection=jobs.connection).work(burst=True, with_scheduler=True)
        after = ScheduledJobRegistry(queue=jobs).get_job_ids()
    assert len(_ids(app, Session)) == 1
    # The run scheduled the one after it.
    assert len(after) == 1 and after != first


def test_expired_challenges_go_and_live_ones_stay(
    app: Flask, make_user: Callable[..., User]
) -> None:
    user = make_user()
    with app.app_context():
        db.session.add_all(
            [
                SignInChallenge(
                    token_hash=f"{n:064x}",
                    user_id=user.id,
                    methods=["pwd"],
                    created_at=expires - timedelta(minutes=5),
                    expires_at=expires,
                )
                for n, expires in enumerate((NOW - DAY, NOW, NOW + timedelta(minutes=1)))
            ]
            + [
                WebAuthnChallenge(
                    kind=CeremonyKind.AUTHENTICATION, challenge=b"x" * 32, expires_at=expires
                )
                for expires in (NOW - timedelta(minutes=1), NOW + timedelta(minutes=1))
            ]
        )
        db.session.commit()
    (done,) = _run(app, "challenges")
    assert done.ran and done.removed == 3  # two sign-in challenges (the boundary too), one passkey
    with app.app_context():
        assert set(db.session.scalars(select(SignInChallenge.token_hash))) == {f"{2:064x}"}
        (left,) = db.session.scalars(select(WebAuthnChallenge.expires_at))
        assert left > NOW


def test_flask_retention_run_reports_each_job(app: Flask, make_user: Callable[..., User]) -> None:
    user = make_user()
    _store(app, _session(user, expires=NOW - 60 * DAY), _event(NOW - 400 * DAY))
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "sessions: removed 1 rows" in result.output
    assert "one_time_tokens: removed 0 rows" in result.output
    assert "audit_events: removed 1 rows" in result.output
    assert "challenges: removed 0 rows" in result.output
    only = app.test_cli_runner().invoke(args=["retention", "run", "--job", "sessions"])
    assert only.output.count("removed") == 1


def _partitions(app: Flask) -> list[str]:
    with app.app_context():
        return [partition.name for partition in AuditPartitionRepository().months()]


def _count_in(app: Flask, table: str) -> int:
    with app.app_context():
        return int(db.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


@needs_postgres
def test_the_job_creates_months_ahead_and_moves_strays_into_them(
    app: Flask, tuned: Callable[..., None]
) -> None:
    tuned(AUDIT_PARTITIONS_AHEAD=3)
    _store(app, _event(NOW), _event(NOW - DAY))  # in the default partition for now
    (done,) = _run(app, "audit_events")
    month = month_start(NOW)
    expected = [partition_name(month)]
    for _ in range(3):
        month = next_month(month)
        expected.append(partition_name(month))
    assert done.partitions_created == expected
    assert _partitions(app) == expected
    this_month = sum(1 for moment in (NOW, NOW - DAY) if moment >= month_start(NOW))
    assert _count_in(app, expected[0]) == this_month
    assert _count_in(app, "audit_events_default") == 2 - this_month
    # Nothing to do the second time; inserts now land in the month's partition.
    (again,) = _run(app, "audit_events")
    assert again.partitions_created == [] and again.removed == 0
    _store(app, _event(NOW))
    assert _count_in(app, expected[0]) == this_month + 1


@needs_postgres
def test_retention_drops_whole_months_past_the_cut_off(
    app: Flask, tuned: Callable[..., None]
) -> None:
    tuned(AUDIT_RETENTION_DAYS=30, AUDIT_PARTITIONS_AHEAD=1)
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)  # cut-off: 2026-05-16 12:00
    with app.app_context():
        for start in (datetime(2026, m, 1, tzinfo=UTC) for m in (3, 4, 5)):
            AuditPartitionRepository().create(start)
        db.session.commit()
    rows = _store(
        app,
        _event(datetime(2026, 3, 10, tzinfo=UTC)),
        _event(datetime(2026, 4, 30, 23, 59, tzinfo=UTC)),
        _event(datetime(2026, 5, 1, tzinfo=UTC)),  # May ends after the cut-off: kept
        _event(datetime(2026, 5, 20, tzinfo=UTC)),
    )
    (done,) = _run(app, "audit_events", now=now)
    assert done.partitions_dropped == ["audit_events_2026_03", "audit_events_2026_04"]
    assert done.partitions_created == ["audit_events_2026_06", "audit_events_2026_07"]
    assert done.removed == 2
    assert _partitions(app) == [
        "audit_events_2026_05",
        "audit_events_2026_06",
        "audit_events_2026_07",
    ]
    assert _ids(app, AuditEvent) == {rows["row2"], rows["row3"]}


def _drop_months(app: Flask) -> None:
    """Leave the shared schema with the default partition only."""
    with app.app_context():
        partitions = AuditPartitionRepository()
        for partition in partitions.months():
            partitions.drop(partition)
        db.session.commit()


def test_without_redis_the_lock_is_this_process(app_factory: Callable[..., Flask]) -> None:
    instance = app_factory(REDIS_URL=None)
    with instance.app_context():
        assert redis_client.client is None
        with job_locks.hold("retention:local", ttl=5) as first:
            assert first is not None
            with job_locks.hold("retention:local", ttl=5) as second:
                assert second is None
