"""Queries on users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Uuid, literal, select, tuple_

from project.models import Role, User
from project.models.types import UTCDateTime
from project.repositories.base import BaseRepository


@dataclass(frozen=True)
class UserFilters:
    """Admin list filters; None means no filter."""

    role: Role | None = None
    is_active: bool | None = None
    email_prefix: str | None = None


class UserRepository(BaseRepository[User]):
    """Users by id, by email, and in stable keyset pages."""

    model = User

    def get_by_email(self, email_normalized: str) -> User | None:
        """Return the user with this normalized email, or None."""
        return self.session.scalars(
            select(User).where(User.email_normalized == email_normalized)
        ).one_or_none()

    def page(
        self,
        *,
        filters: UserFilters,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[User]:
        """Return up to ``limit`` users ordered by (created_at, id), after the cursor."""
        query = select(User).order_by(User.created_at, User.id).limit(limit)
        if filters.role is not None:
            query = query.where(User.role == filters.role)
        if filters.is_active is not None:
            query = query.where(User.is_active == filters.is_active)
        if filters.email_prefix:
            query = query.where(
                User.email_normalized.startswith(filters.email_prefix, autoescape=True)
            )
        if after is not None:
            created_at, user_id = after
            # A row comparison lets PostgreSQL seek straight to the cursor in the index.
            query = query.where(
                tuple_(User.created_at, User.id)
                > tuple_(literal(created_at, UTCDateTime), literal(user_id, Uuid))
            )
        return list(self.session.scalars(query))

    def lock_active_admins(self) -> int:
        """Lock the active admins' rows until commit and return how many there are.

        The lock makes two concurrent demotions of the last two admins run one after the
        other, so the second sees the first and refuses.
        """
        query = (
            select(User.id)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
            .with_for_update()
        )
        return len(self.session.scalars(query).all())
