"""Data access: query, add and flush; never commit (services own transactions)."""

from project.repositories.base import BaseRepository
from project.repositories.sessions import SessionRepository
from project.repositories.users import UserFilters, UserRepository

__all__ = ["BaseRepository", "SessionRepository", "UserFilters", "UserRepository"]
