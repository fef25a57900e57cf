"""A generic repository over one model."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import scoped_session

from project.extensions import db

ModelT = TypeVar("ModelT")


class BaseRepository(Generic[ModelT]):
    """Basic persistence for ``model`` through the request-scoped session."""

    model: ClassVar[type[Any]]

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session: OrmSession | scoped_session[Any] = session or db.session

    def get(self, entity_id: uuid.UUID) -> ModelT | None:
        """Return the row with this primary key, or None."""
        return self.session.get(self.model, entity_id)

    def add(self, entity: ModelT) -> ModelT:
        """Stage a new row and flush so database defaults and constraints apply now."""
        self.session.add(entity)
        self.session.flush()
        return entity

    def stage(self, entity: ModelT) -> ModelT:
        """Stage a new row for the next flush or the commit, whichever comes first.

        For rows nothing reads back before the commit and no constraint of theirs can fail:
        one flush at the commit writes them with the rest of the use case.
        """
        self.session.add(entity)
        return entity

    def flush(self) -> None:
        """Send the staged changes now, so the database's constraints decide at this point."""
        self.session.flush()

    def delete(self, entity: ModelT) -> None:
        """Delete a row and flush."""
        self.session.delete(entity)
        self.session.flush()

    def ids_where(
        self, condition: ColumnElement[bool], *, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        """Up to ``limit`` ids of rows matching ``condition``, in id order after ``after``.

        A walk along the primary key, so a batch job continues where its last batch stopped
        without an index on what ``condition`` reads.
        """
        query = select(self.model.id).where(condition).order_by(self.model.id).limit(limit)
        if after is not None:
            query = query.where(self.model.id > after)
        return list(self.session.scalars(query))

    def delete_ids(self, ids: list[uuid.UUID]) -> int:
        """Delete the rows with these ids; return how many went."""
        result = self.session.execute(delete(self.model).where(self.model.id.in_(ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]
