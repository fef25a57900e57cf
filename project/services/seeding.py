"""Bulk test data: many users quickly, for benchmarks and load tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from project.core import emails, errors, security
from project.core.settings import current_settings
from project.extensions import db
from project.models import Role
from project.models.types import utcnow
from project.repositories.users import UserRepository

BATCH = 20_000


def _email(prefix: str, index: int) -> str:
    return f"{prefix}{index:07d}@seed.example"


def _check_prefix(prefix: str) -> None:
    """Raise ValidationFailed unless the prefix makes addresses already in normalized form.

    Then every seeded address is its own normalized form and key (only the digits
    differ), so one check stands for all: the library's 30 µs an address would add half
    a minute to a million rows.
    """
    sample = _email(prefix, 0)
    try:
        address = emails.parse(sample)
    except emails.InvalidEmailError as exc:
        raise errors.ValidationFailed(f"The prefix makes invalid addresses: {exc}") from None
    if address.email != sample or address.key != sample:
        raise errors.ValidationFailed("The prefix must be in normalized form (lower case).")


def _rows(count: int, *, prefix: str, password_hash: str) -> Iterator[dict[str, object]]:
    start = utcnow() - timedelta(seconds=count)
    for index in range(count):
        email = _email(prefix, index)
        moment = start + timedelta(seconds=index)
        yield {
            "id": uuid.uuid4(),
            "email": email,
            "email_normalized": email,
            "password_hash": password_hash,
            "full_name": f"Seeded User {index}",
            "role": Role.USER.value,
            "is_active": index % 50 != 0,
            "email_verified": True,
            "token_version": 0,
            "created_at": moment,
            "updated_at": moment,
        }


def seed_users(*, count: int, password: str, prefix: str = "seed") -> int:
    """Insert ``count`` users sharing one password (hashed once); return how many."""
    _check_prefix(prefix)
    password_hash = security.hash_password(password, rounds=current_settings().BCRYPT_ROUNDS)
    try:
        inserted = UserRepository().bulk_insert(
            _rows(count, prefix=prefix, password_hash=password_hash), batch=BATCH
        )
    except IntegrityError:
        db.session.rollback()
        raise errors.EmailTaken(
            f"Accounts with the prefix {prefix!r} exist already; seed with another --prefix."
        ) from None
    db.session.commit()
    return inserted
