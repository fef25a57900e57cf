"""The audit table's monthly partitions on PostgreSQL: listed, created ahead, dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import TableClause, Uuid, column, table, text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import scoped_session

from project.extensions import db
from project.models.audit_event import DEFAULT_PARTITION, PARTITION_PREFIX
from project.models.types import UTCDateTime

_MONTH = re.compile(rf"{PARTITION_PREFIX}(\d{{4}})_(\d{{2}})")
# DDL on the partitioned table waits at most this long for its lock, so a long read of the
# trail makes the job try again next run instead of queueing every insert behind it.
LOCK_TIMEOUT = "5s"


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of ``moment``'s month."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one ``start`` begins."""
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def partition_name(start: datetime) -> str:
    """The partition holding the month that begins at ``start``."""
    return f"{PARTITION_PREFIX}{start.year:04d}_{start.month:02d}"


@dataclass(frozen=True)
class Partition:
    """One month's partition: rows with start <= occurred_at < end."""

    name: str
    start: datetime
    end: datetime


def default_partition() -> TableClause:
    """The default partition, as a table to select and delete from."""
    return table(DEFAULT_PARTITION, column("id", Uuid), column("occurred_at", UTCDateTime))


class AuditPartitionRepository:
    """Partition DDL through the current session; the caller commits."""

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session: OrmSession | scoped_session[Any] = session or db.session

    def supported(self) -> bool:
        """Whether the audit table is partitioned (PostgreSQL)."""
        return self.session.get_bind().dialect.name == "postgresql"

    def months(self) -> list[Partition]:
        """The monthly partitions there are, oldest first."""
        names = self.session.scalars(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'audit_events'::regclass"
            )
        )
        found = []
        for name in names:
            match = _MONTH.fullmatch(name)
            if match:
                start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
                found.append(Partition(name, start, next_month(start)))
        return sorted(found, key=lambda partition: partition.start)

    def create(self, start: datetime) -> Partition:
        """Create the partition of the month beginning at ``start``.

        Rows of that month already in the default partition move into the new one in the
        same transaction (PostgreSQL refuses a partition whose rows sit in the default).
        """
        partition = Partition(partition_name(start), start, next_month(start))
        bounds = f"FROM ('{start.isoformat()}') TO ('{partition.end.isoformat()}')"
        self.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        # Table names here are constants or built from a date, never from input.
        strays = self.session.scalar(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION}"  # noqa: S608
                " WHERE occurred_at >= :start AND occurred_at < :end)"
            ),
            {"start": start, "end": partition.end},
        )
        if not strays:
            self.session.execute(
                text(f"CREATE TABLE {partition.name} PARTITION OF audit_events FOR VALUES {bounds}")
            )
            return partition
        # Rare (the job did not run for a month): the move may outlast DB_STATEMENT_TIMEOUT_MS.
        self.session.execute(text("SET LOCAL statement_timeout = 0"))
        self.session.execute(
            text(f"CREATE TABLE {partition.name} (LIKE audit_events INCLUDING DEFAULTS)")
        )
        self.session.execute(
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"  # noqa: S608
                " WHERE occurred_at >= :start AND occurred_at < :end RETURNING *)"
                f" INSERT INTO {partition.name} SELECT * FROM moved"
            ),
            {"start": start, "end": partition.end},
        )
        self.session.execute(
            text(f"ALTER TABLE audit_events ATTACH PARTITION {partition.name} FOR VALUES {bounds}")
        )
        return partition

    def drop(self, partition: Partition) -> int:
        """Drop a month's partition with its rows; return how many rows it held."""
        self.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        count = text(f"SELECT count(*) FROM {partition.name}")  # noqa: S608
        rows = int(self.session.scalar(count) or 0)
        self.session.execute(text(f"DROP TABLE {partition.name}"))
        return rows
