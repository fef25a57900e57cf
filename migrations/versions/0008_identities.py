"""identities at external providers, and the sign-in token purposes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 12:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD_PURPOSES = ('verify_email', 'reset_password', 'change_email')
NEW_PURPOSES = (*OLD_PURPOSES, 'sign_in', 'email_sign_in')


def _purpose(values):
    return sa.Enum(*values, name='token_purpose', native_enum=False, create_constraint=True, length=32)


def upgrade():
    op.create_table('identities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
    sa.UniqueConstraint('provider', 'subject', name='uq_identities_provider_subject')
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index('ix_identities_user_id', ['user_id'], unique=False)
    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.alter_column('purpose', existing_type=_purpose(OLD_PURPOSES), type_=_purpose(NEW_PURPOSES), existing_nullable=False)


def downgrade():
    op.execute(sa.text("DELETE FROM one_time_tokens WHERE purpose IN ('sign_in', 'email_sign_in')"))
    with op.batch_alter_table('one_time_tokens', schema=None) as batch_op:
        batch_op.alter_column('purpose', existing_type=_purpose(NEW_PURPOSES), type_=_purpose(OLD_PURPOSES), existing_nullable=False)
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index('ix_identities_user_id')
    op.drop_table('identities')
