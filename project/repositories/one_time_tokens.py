"""Queries on one-time tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update

from project.models import OneTimeToken, TokenPurpose
from project.repositories.base import BaseRepository


class OneTimeTokenRepository(BaseRepository[OneTimeToken]):
    """Tokens by hash; consumption is a conditional UPDATE so a token works exactly once."""

    model = OneTimeToken

    def find_usable(
        self, token_hash: str, *, purposes: tuple[TokenPurpose, ...], now: datetime
    ) -> OneTimeToken | None:
        """Return the unused, unexpired token with this hash and one of these purposes."""
        return self.session.scalars(
            select(OneTimeToken).where(
                OneTimeToken.token_hash == token_hash,
                OneTimeToken.purpose.in_(purposes),
                OneTimeToken.used_at.is_(None),
                OneTimeToken.expires_at > now,
            )
        ).one_or_none()

    def live_of_user(
        self, user_id: uuid.UUID, purpose: TokenPurpose, *, now: datetime
    ) -> list[OneTimeToken]:
        """A user's unused, unexpired tokens of ``purpose``, newest first."""
        return list(
            self.session.scalars(
                select(OneTimeToken)
                .where(
                    OneTimeToken.user_id == user_id,
                    OneTimeToken.purpose == purpose,
                    OneTimeToken.used_at.is_(None),
                    OneTimeToken.expires_at > now,
                )
                .order_by(OneTimeToken.created_at.desc(), OneTimeToken.id.desc())
            )
        )

    def consume(self, token_id: uuid.UUID, *, now: datetime) -> bool:
        """Mark a token used; False if a concurrent request used it first."""
        result = self.session.execute(
            update(OneTimeToken)
            .where(OneTimeToken.id == token_id, OneTimeToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def invalidate_all_but_newest(
        self, user_id: uuid.UUID, purpose: TokenPurpose, *, keep: int, now: datetime
    ) -> None:
        """Void a user's live tokens of ``purpose`` except the ``keep`` newest."""
        older = (
            select(OneTimeToken.id)
            .where(
                OneTimeToken.user_id == user_id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
                OneTimeToken.expires_at > now,
            )
            .order_by(OneTimeToken.created_at.desc(), OneTimeToken.id.desc())
            .offset(keep)
        )
        self.session.execute(
            update(OneTimeToken)
            .where(OneTimeToken.id.in_(older))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )

    def invalidate_for_user(
        self, user_id: uuid.UUID, *, now: datetime, purposes: tuple[TokenPurpose, ...] | None = None
    ) -> None:
        """Void a user's unused tokens (all purposes unless given)."""
        query = update(OneTimeToken).where(
            OneTimeToken.user_id == user_id, OneTimeToken.used_at.is_(None)
        )
        if purposes is not None:
            query = query.where(OneTimeToken.purpose.in_(purposes))
        self.session.execute(query.values(used_at=now).execution_options(synchronize_session=False))

    def spent_before(
        self, cutoff: datetime, *, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        """Ids of tokens used or expired before ``cutoff``, in id order after ``after``."""
        spent = or_(OneTimeToken.used_at < cutoff, OneTimeToken.expires_at < cutoff)
        return self.ids_where(spent, after=after, limit=limit)
