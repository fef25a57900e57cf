"""Reachability of the database."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession

from project.extensions import db


class DatabaseProbe:
    """Asks the database a trivial question."""

    def __init__(self, session: OrmSession | None = None) -> None:
        self.session = session if session is not None else db.session

    def ping(self) -> None:
        """Run SELECT 1; raises SQLAlchemyError when the database cannot answer."""
        self.session.execute(text("SELECT 1"))

    def reset(self) -> None:
        """Discard the failed transaction so the session stays usable."""
        self.session.rollback()
