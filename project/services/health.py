"""Readiness checks of the service's dependencies."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from project.core import errors
from project.repositories.health import DatabaseProbe

logger = logging.getLogger(__name__)


def check_database() -> bool:
    """Whether the database answers a trivial query."""
    probe = DatabaseProbe()
    try:
        probe.ping()
        return True
    except SQLAlchemyError as exc:
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        probe.reset()
        return False


def readiness() -> dict[str, str]:
    """Return each check's state, or raise NotReady naming the failed ones."""
    checks = {"database": "ok" if check_database() else "fail"}
    if any(state != "ok" for state in checks.values()):
        failed = ", ".join(name for name, state in checks.items() if state != "ok")
        raise errors.NotReady(f"Failed checks: {failed}.", checks=checks)
    return checks
