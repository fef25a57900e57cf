"""Queries on identities at external providers."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from project.models import Identity
from project.repositories.base import BaseRepository


class IdentityRepository(BaseRepository[Identity]):
    """Identities by (provider, subject) and by user."""

    model = Identity

    def find(self, provider: str, subject: str) -> Identity | None:
        """Return the identity of ``subject`` at ``provider``, or None."""
        return self.session.scalars(
            select(Identity).where(Identity.provider == provider, Identity.subject == subject)
        ).one_or_none()

    def of_user(self, user_id: uuid.UUID) -> list[Identity]:
        """A user's identities, oldest first."""
        return list(
            self.session.scalars(
                select(Identity)
                .where(Identity.user_id == user_id)
                .order_by(Identity.created_at, Identity.id)
            )
        )

    def count_of_user(self, user_id: uuid.UUID) -> int:
        """How many identities a user has."""
        return int(
            self.session.scalar(
                select(func.count()).select_from(Identity).where(Identity.user_id == user_id)
            )
            or 0
        )
