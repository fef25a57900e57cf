"""Queries on passkeys and on the challenges of their ceremonies."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update

from project.models import CeremonyKind, Passkey, WebAuthnChallenge
from project.repositories.base import BaseRepository


class PasskeyRepository(BaseRepository[Passkey]):
    """A user's passkeys, and the lookup by credential id a sign-in starts from."""

    model = Passkey

    def for_user(self, user_id: uuid.UUID) -> list[Passkey]:
        """The user's passkeys, oldest first."""
        return list(
            self.session.scalars(
                select(Passkey)
                .where(Passkey.user_id == user_id)
                .order_by(Passkey.created_at, Passkey.id)
            )
        )

    def count_for_user(self, user_id: uuid.UUID) -> int:
        """How many passkeys the user has."""
        return int(self.session.scalar(select(func.count()).where(Passkey.user_id == user_id)) or 0)

    def by_credential_id(self, credential_id: bytes, *, lock: bool = False) -> Passkey | None:
        """The passkey with this credential id, locked for update when asked."""
        query = select(Passkey).where(Passkey.credential_id == credential_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def delete_for_user(self, user_id: uuid.UUID) -> int:
        """Remove every passkey of the user (an admin's reset of the factors); how many."""
        result = self.session.execute(
            delete(Passkey)
            .where(Passkey.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def advance_counter(self, passkey_id: uuid.UUID, *, seen: int, new: int, now: datetime) -> bool:
        """Store a sign-in's counter unless another sign-in moved it since ``seen`` was read."""
        result = self.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, Passkey.sign_count == seen)
            .values(sign_count=new, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class ChallengeRepository(BaseRepository[WebAuthnChallenge]):
    """Ceremony challenges; taking one deletes it, so each is answered at most once."""

    model = WebAuthnChallenge

    def take(
        self, challenge_id: uuid.UUID, *, kind: CeremonyKind, now: datetime
    ) -> WebAuthnChallenge | None:
        """Remove and return the live challenge of this kind, or None (unknown, used, expired)."""
        found = self.session.execute(
            delete(WebAuthnChallenge)
            .where(WebAuthnChallenge.id == challenge_id, WebAuthnChallenge.kind == kind)
            .returning(WebAuthnChallenge)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if found is None or found.expires_at <= now:
            return None
        return found

    def delete_expired(self, *, now: datetime) -> int:
        """Forget challenges nobody answered in time; return how many."""
        result = self.session.execute(
            delete(WebAuthnChallenge)
            .where(WebAuthnChallenge.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
