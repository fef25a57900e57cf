"""Sign-in challenges waiting for a second factor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update

from project.models import SignInChallenge
from project.repositories.base import BaseRepository


class SignInChallengeRepository(BaseRepository[SignInChallenge]):
    """Challenges by hash; each attempt is counted by a conditional UPDATE before its check."""

    model = SignInChallenge

    def find_live(
        self, token_hash: str, *, now: datetime, max_attempts: int
    ) -> SignInChallenge | None:
        """Return the unexpired challenge with attempts left, without counting one."""
        return self.session.scalars(
            select(SignInChallenge).where(
                SignInChallenge.token_hash == token_hash,
                SignInChallenge.expires_at > now,
                SignInChallenge.attempts < max_attempts,
            )
        ).one_or_none()

    def count_attempt(
        self, token_hash: str, *, now: datetime, max_attempts: int
    ) -> SignInChallenge | None:
        """Count one attempt on a live challenge and return it; None when it is not live.

        Counted before the code is checked, in one statement, so concurrent guesses on one
        challenge cannot exceed ``max_attempts`` between them.
        """
        row = self.session.execute(
            update(SignInChallenge)
            .where(
                SignInChallenge.token_hash == token_hash,
                SignInChallenge.expires_at > now,
                SignInChallenge.attempts < max_attempts,
            )
            .values(attempts=SignInChallenge.attempts + 1)
            .returning(SignInChallenge)
            .execution_options(synchronize_session=False, populate_existing=True)
        ).scalar_one_or_none()
        return row

    def take(self, token_hash: str) -> bool:
        """Delete a challenge that is being redeemed; False if another request took it first."""
        result = self.session.execute(
            delete(SignInChallenge)
            .where(SignInChallenge.token_hash == token_hash)
            .returning(SignInChallenge.token_hash)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None

    def delete_for_user(self, user_id: uuid.UUID) -> None:
        """Forget every pending challenge of a user (its factors changed)."""
        self.session.execute(
            delete(SignInChallenge)
            .where(SignInChallenge.user_id == user_id)
            .execution_options(synchronize_session=False)
        )

    def delete_expired(self, *, now: datetime, user_id: uuid.UUID | None = None) -> int:
        """Remove expired challenges (of one user, when given); return how many."""
        query = delete(SignInChallenge).where(SignInChallenge.expires_at <= now)
        if user_id is not None:
            query = query.where(SignInChallenge.user_id == user_id)
        result = self.session.execute(query.execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]
