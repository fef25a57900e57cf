"""ORM models; importing this package registers every table on the metadata."""

from project.models.session import Session
from project.models.user import Role, User

__all__ = ["Role", "Session", "User"]
