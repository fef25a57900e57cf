"""Queries on second factors: TOTP factors and recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, delete, exists, select, update

from project.models import Passkey, RecoveryCode, TotpFactor
from project.repositories.base import BaseRepository


class TotpFactorRepository(BaseRepository[TotpFactor]):
    """A user's authenticator apps, active or pending confirmation."""

    model = TotpFactor

    def for_user(self, user_id: uuid.UUID) -> list[TotpFactor]:
        """Return a user's factors, oldest first."""
        return list(
            self.session.scalars(
                select(TotpFactor)
                .where(TotpFactor.user_id == user_id)
                .order_by(TotpFactor.created_at, TotpFactor.id)
            )
        )

    def active_for_user(self, user_id: uuid.UUID) -> list[TotpFactor]:
        """Return a user's confirmed factors, oldest first."""
        return [factor for factor in self.for_user(user_id) if factor.is_active]

    def batch_after(self, after: uuid.UUID | None, *, limit: int) -> list[TotpFactor]:
        """Every user's factors in id order, ``limit`` at a time, after ``after``."""
        query = select(TotpFactor).order_by(TotpFactor.id).limit(limit)
        if after is not None:
            query = query.where(TotpFactor.id > after)
        return list(self.session.scalars(query))

    def use_step(self, factor_id: uuid.UUID, step: int) -> bool:
        """Record ``step`` as used; False when it or a later one was used already.

        A conditional UPDATE: of two requests presenting one code at once, one wins.
        """
        result = self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.id == factor_id,
                (TotpFactor.last_used_step.is_(None)) | (TotpFactor.last_used_step < step),
            )
            .values(last_used_step=step)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def delete_pending(self, user_id: uuid.UUID) -> None:
        """Forget a user's unconfirmed enrolments."""
        self.session.execute(
            delete(TotpFactor)
            .where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None))
            .execution_options(synchronize_session=False)
        )

    def delete_for_user(self, user_id: uuid.UUID) -> int:
        """Remove every factor of a user; return how many."""
        result = self.session.execute(
            delete(TotpFactor)
            .where(TotpFactor.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class RecoveryCodeRepository(BaseRepository[RecoveryCode]):
    """A user's recovery codes, by hash."""

    model = RecoveryCode

    def use(self, user_id: uuid.UUID, code_hash: str, *, now: datetime) -> bool:
        """Mark an unused code of the user used; False if there is none (or it was used)."""
        result = self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def unused_count(self, user_id: uuid.UUID) -> int:
        """How many codes of the user are left."""
        return len(
            list(
                self.session.scalars(
                    select(RecoveryCode.id).where(
                        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                    )
                )
            )
        )

    def delete_for_user(self, user_id: uuid.UUID) -> None:
        """Void every code of a user."""
        self.session.execute(
            delete(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )


# Built once: every sign-in asks it (see users.py).
_KINDS = select(
    exists()
    .where(TotpFactor.user_id == bindparam("user_id"), TotpFactor.confirmed_at.isnot(None))
    .label("totp"),
    exists()
    .where(RecoveryCode.user_id == bindparam("user_id"), RecoveryCode.used_at.is_(None))
    .label("recovery"),
    exists().where(Passkey.user_id == bindparam("user_id")).label("webauthn"),
)
_KIND_NAMES = ("totp", "recovery", "webauthn")


class FactorQueries(BaseRepository[TotpFactor]):
    """Questions across factor kinds."""

    model = TotpFactor

    def kinds(self, user_id: uuid.UUID) -> list[str]:
        """Which kinds of factor the user holds, asked in one statement."""
        held = self.session.execute(_KINDS, {"user_id": user_id}).one()
        return [kind for kind, has in zip(_KIND_NAMES, held, strict=True) if has]
