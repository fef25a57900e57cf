"""second factors: session amr and auth_time, TOTP factors, recovery codes, challenges

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:40:00

Existing sessions were opened with a password: their ``amr`` becomes ["pwd"] and their
``auth_time`` their creation time.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amr', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('auth_time', sa.DateTime(timezone=True), nullable=True))
    sessions = sa.table(
        'sessions',
        sa.column('amr', sa.JSON()),
        sa.column('auth_time', sa.DateTime(timezone=True)),
        sa.column('created_at', sa.DateTime(timezone=True)),
    )
    op.execute(sessions.update().values(amr=['pwd'], auth_time=sessions.c.created_at))
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.alter_column('amr', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column(
            'auth_time', existing_type=sa.DateTime(timezone=True), nullable=False
        )

    op.create_table('totp_factors',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_totp_factors_user_id', 'totp_factors', ['user_id'], unique=False)
    op.create_table('recovery_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recovery_codes_user_id', 'recovery_codes', ['user_id'], unique=False)
    op.create_table('sign_in_challenges',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('methods', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index(
        'ix_sign_in_challenges_user_id', 'sign_in_challenges', ['user_id'], unique=False
    )


def downgrade():
    op.drop_index('ix_sign_in_challenges_user_id', table_name='sign_in_challenges')
    op.drop_table('sign_in_challenges')
    op.drop_index('ix_recovery_codes_user_id', table_name='recovery_codes')
    op.drop_table('recovery_codes')
    op.drop_index('ix_totp_factors_user_id', table_name='totp_factors')
    op.drop_table('totp_factors')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('auth_time')
        batch_op.drop_column('amr')
