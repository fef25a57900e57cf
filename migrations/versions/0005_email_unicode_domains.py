"""users.email_normalized: a domain's IDNA A-labels as the Unicode labels they encode

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 04:00:00

bob@xn--exmple-cua.com and bob@exämple.com name one mailbox but could be two accounts.
normalize_email (project/core/emails.py) now decodes A-labels; this revision rewrites the
rows stored before it, the ones whose normalized domain holds "xn--". A row whose new form
another account already has keeps its old one and is reported: merging two accounts is
an operator's decision, not a migration's. The decoding is copied here, frozen, so later
changes to the application cannot change what this revision does.
"""
import logging
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

logger = logging.getLogger('alembic.runtime.migration')

ACE_PREFIX = 'xn--'
users = sa.table(
    'users',
    sa.column('id', sa.Uuid),
    sa.column('email', sa.String),
    sa.column('email_normalized', sa.String),
)


def _unicode_label(label):
    if not label.startswith(ACE_PREFIX):
        return label
    encoded = label[len(ACE_PREFIX):]
    try:
        decoded = encoded.encode('ascii').decode('punycode')
        canonical = decoded.encode('punycode').decode('ascii') == encoded
        decoded.encode('utf-8')
    except UnicodeError:
        return label
    if (
        not canonical
        or decoded.isascii()
        or decoded != unicodedata.normalize('NFKC', decoded.lower())
    ):
        return label
    return decoded


def _decoded(address):
    local, at, domain = address.rpartition('@')
    if not at:
        return address
    return local + at + '.'.join(_unicode_label(label) for label in domain.split('.'))


def _rewrite(new_form, only_where):
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.email, users.c.email_normalized).where(only_where)
    ).all()
    for user_id, email, old in rows:
        new = new_form(email, old)
        if new == old:
            continue
        holder = bind.execute(
            sa.select(users.c.id).where(users.c.email_normalized == new)
        ).first()
        if holder is not None:
            logger.warning(
                'user %s keeps email_normalized %r: user %s already has %r',
                user_id, old, holder.id, new,
            )
            continue
        bind.execute(
            users.update().where(users.c.id == user_id).values(email_normalized=new)
        )


def upgrade():
    _rewrite(
        lambda email, old: _decoded(old),
        users.c.email_normalized.contains(ACE_PREFIX, autoescape=True),
    )


def downgrade():
    # Before this revision the normalized form was the address trimmed and lower-cased.
    _rewrite(
        lambda email, old: email.strip().lower(),
        users.c.email_normalized != sa.func.lower(users.c.email),
    )
