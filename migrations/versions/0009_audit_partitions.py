"""audit events keyed by (id, occurred_at); partitioned by month on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:00:00

PostgreSQL: the table becomes one partitioned by RANGE (occurred_at), with a partition per
month from the oldest event's to three months ahead and a default partition for anything
else; the rows are copied over in this transaction (minutes per ten million events) and the
indexes built once they are in. The retention job keeps creating months ahead and drops
those past AUDIT_RETENTION_DAYS. SQLite: only the primary key changes; the table stays plain.
Downgrade copies the rows back into a plain table keyed by id.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

MONTHS_AHEAD = 3
COLUMNS = "id, occurred_at, event_type, actor_id, user_id, ip, user_agent, request_id, details"
INDEXES = (
    ('ix_audit_events_user_id_occurred_at', ['user_id', 'occurred_at', 'id']),
    ('ix_audit_events_event_type_occurred_at', ['event_type', 'occurred_at']),
    ('ix_audit_events_occurred_at_id', ['occurred_at', 'id']),
)


def _create_table(key, **options):
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('event_type', sa.String(length=64), nullable=False),
        sa.Column('actor_id', sa.Uuid(), nullable=True),
        sa.Column('user_id', sa.Uuid(), nullable=True),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.Column('user_agent', sa.String(length=512), nullable=True),
        sa.Column('request_id', sa.String(length=128), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name='pk_audit_events'),
        **options,
    )


def _set_aside(name):
    """Rename the table and its key out of the way, and drop its indexes."""
    # Copying the trail takes longer than the request-sized DB_STATEMENT_TIMEOUT_MS.
    op.execute('SET LOCAL statement_timeout = 0')
    op.execute(f'ALTER TABLE audit_events RENAME TO {name}')
    op.execute(f'ALTER TABLE {name} RENAME CONSTRAINT pk_audit_events TO pk_{name}')
    for index, _columns in INDEXES:
        op.drop_index(index, table_name=name)


def _copy_from(name):
    op.execute(f'INSERT INTO audit_events ({COLUMNS}) SELECT {COLUMNS} FROM {name}')
    op.execute(f'DROP TABLE {name}')
    for index, columns in INDEXES:
        op.create_index(index, 'audit_events', columns)


def _month_after(month):
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


def _months(first, count_ahead):
    """(start, end) of each month from ``first``'s to ``count_ahead`` months after this one."""
    now = datetime.now(UTC)
    last = datetime(now.year, now.month, 1, tzinfo=UTC)
    for _ in range(count_ahead):
        last = _month_after(last)
    month = datetime(first.year, first.month, 1, tzinfo=UTC)
    while month <= last:
        yield month, _month_after(month)
        month = _month_after(month)


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        with op.batch_alter_table('audit_events', recreate='always') as batch_op:
            batch_op.drop_constraint('pk_audit_events', type_='primary')
            batch_op.create_primary_key('pk_audit_events', ['id', 'occurred_at'])
        return
    _set_aside('audit_events_unpartitioned')
    _create_table(['id', 'occurred_at'], postgresql_partition_by='RANGE (occurred_at)')
    now = datetime.now(UTC)
    oldest = op.get_bind().scalar(sa.text('SELECT min(occurred_at) FROM audit_events_unpartitioned'))
    for start, end in _months(min(oldest or now, now).astimezone(UTC), MONTHS_AHEAD):
        op.execute(
            f"CREATE TABLE audit_events_{start:%Y_%m} PARTITION OF audit_events"
            f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    op.execute('CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT')
    _copy_from('audit_events_unpartitioned')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        with op.batch_alter_table('audit_events', recreate='always') as batch_op:
            batch_op.drop_constraint('pk_audit_events', type_='primary')
            batch_op.create_primary_key('pk_audit_events', ['id'])
        return
    _set_aside('audit_events_partitioned')
    _create_table(['id'])
    _copy_from('audit_events_partitioned')
