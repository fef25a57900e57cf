"""users.email and users.email_normalized in email-validator's normalized forms

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00

Each row is put through the application's rule (project.core.emails.parse, so an
upgrade lands on the forms the code at head looks up): ``email`` becomes the library's
normalized address (domain lower-cased, one Unicode spelling of an IDNA domain) and
``email_normalized`` the same with the local part lower-cased.

Refuses to run, changing nothing, if two accounts would share a key (``bob@exämple.com``
and ``bob@xn--exmple-cua.com`` are one mailbox): the error names them; change or delete
one (or merge them) and run it again. A row the library refuses (an address at
``localhost``, a quoted local part) is left as it was; its owner still logs in with it,
since lookups fall back to the trimmed, lower-cased text for such addresses.

Reads every row once (about 30 µs each in the library: half a minute a million users).
Downgrade changes nothing: the earlier code compares trimmed, lower-cased text, which
the new keys are, and the addresses as first typed are not kept.
"""
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import islice

from alembic import op
import sqlalchemy as sa

from project.core import emails


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

users = sa.table(
    'users',
    sa.column('id', sa.Uuid),
    sa.column('email', sa.String),
    sa.column('email_normalized', sa.String),
)
CHUNK = 500
# At most this many collisions are listed in the refusal.
SHOWN = 50


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _changes(bind) -> dict:
    """{id: (old email, new email, new key)} for the rows whose forms change."""
    changes = {}
    rows = bind.execute(
        sa.select(users.c.id, users.c.email, users.c.email_normalized).execution_options(
            yield_per=CHUNK
        )
    )
    for user_id, email, key in rows:
        try:
            address = emails.parse(email)
        except emails.InvalidEmailError:
            continue
        if (address.email, address.key) != (email, key):
            changes[user_id] = (email, address.email, address.key)
    return changes


def _collisions(bind, changes: dict) -> list[str]:
    """One line per new key that two accounts would share."""
    claims = defaultdict(list)
    for user_id, (old_email, _, key) in changes.items():
        claims[key].append((user_id, old_email))
    for chunk in _chunks(claims, CHUNK):
        holders = bind.execute(
            sa.select(users.c.id, users.c.email, users.c.email_normalized).where(
                users.c.email_normalized.in_(chunk)
            )
        )
        for user_id, email, key in holders:
            if user_id not in changes:  # a key that stays where it is
                claims[key].append((user_id, email))
    return [
        f"{key}: " + ", ".join(f"{user_id} ({email})" for user_id, email in sorted(holders, key=lambda h: h[1]))
        for key, holders in sorted(claims.items())
        if len(holders) > 1
    ]


def upgrade():
    bind = op.get_bind()
    changes = _changes(bind)
    collisions = _collisions(bind, changes)
    if collisions:
        more = len(collisions) - SHOWN
        raise RuntimeError(
            "Refusing to normalize users' emails: these accounts would share an address"
            " (change or remove all but one of each, then upgrade again; nothing was"
            " changed):\n"
            + "\n".join(collisions[:SHOWN])
            + (f"\n... and {more} more" if more > 0 else "")
        )
    # Two passes: a key may move to one another row gives up in the same upgrade, and
    # the unique index is checked row by row.
    update = users.update().where(users.c.id == sa.bindparam('uid'))
    for chunk in _chunks(changes.items(), CHUNK):
        bind.execute(
            update.values(email_normalized=sa.bindparam('parked')),
            [{'uid': uid, 'parked': f'-migrating-{uid.hex}'} for uid, _ in chunk],
        )
    for chunk in _chunks(changes.items(), CHUNK):
        bind.execute(
            update.values(email=sa.bindparam('new_email'), email_normalized=sa.bindparam('key')),
            [{'uid': uid, 'new_email': email, 'key': key} for uid, (_, email, key) in chunk],
        )


def downgrade():
    pass
