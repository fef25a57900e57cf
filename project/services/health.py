"""Readiness checks of the service's dependencies."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from project.core import errors
from project.core.outages import describe_database_error, describe_redis_error
from project.core.settings import current_settings
from project.repositories.health import DatabaseProbe, ProbeError, RedisProbe

logger = logging.getLogger(__name__)


def check_database() -> bool:
    """Whether the database answers a trivial query in time."""
    probe = DatabaseProbe()
    try:
        probe.ping()
        return True
    except (SQLAlchemyError, ProbeError) as exc:
        reason = exc if isinstance(exc, ProbeError) else describe_database_error(exc, probe.url)
        logger.warning("readiness: database check failed: %s", reason)
        probe.reset()
        return False


def check_redis() -> bool | None:
    """Whether Redis answers PING in time; None when no Redis is configured."""
    probe = RedisProbe()
    if not probe.configured:
        return None
    try:
        probe.ping()
        return True
    except RedisError as exc:
        reason = describe_redis_error(exc, current_settings().REDIS_URL)
        logger.warning("readiness: redis check failed: %s", reason)
        return False


def readiness() -> dict[str, str]:
    """Return each check's state, or raise NotReady naming the failed ones."""
    checks = {"database": "ok" if check_database() else "fail"}
    redis_ok = check_redis()
    if redis_ok is not None:
        checks["redis"] = "ok" if redis_ok else "fail"
    required = {"database"} | ({"redis"} if current_settings().READY_REQUIRES_REDIS else set())
    failed = [name for name, state in checks.items() if state != "ok" and name in required]
    if failed:
        raise errors.NotReady(f"Failed checks: {', '.join(failed)}.", checks=checks)
    return checks
