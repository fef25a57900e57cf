"""fastapi-users with its JWT strategy: GET /users/me returns the current user.

Served by uvicorn from bench/.venv-peers on its own database:

    PEER_DATABASE_URL=postgresql+asyncpg://... uvicorn --workers 2 bench.peers.fastapi_users_app:app
    PEER_DATABASE_URL=... python -m bench.peers.fastapi_users_app seed USERS TOKENS_FILE TOKENS

The SQLAlchemy set-up of the fastapi-users documentation: a Bearer transport, a
``JWTStrategy`` whose tokens are checked by signature and whose user is read from the
database on every request, and the users router's ``GET /users/me``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

SECRET = os.environ.get("PEER_SECRET", "bench-peer-secret-" + "p" * 40)


class Base(DeclarativeBase):
    """Declarative base."""


class User(SQLAlchemyBaseUserTableUUID, Base):
    """A user."""


engine = create_async_engine(os.environ["PEER_DATABASE_URL"])
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    """One session per request."""
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_async_session)) -> Any:  # noqa: B008
    """The users table."""
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    """Users with UUID ids."""

    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(user_db: Any = Depends(get_user_db)) -> Any:  # noqa: B008
    """The user manager."""
    yield UserManager(user_db)


def get_jwt_strategy() -> JWTStrategy[User, uuid.UUID]:
    """JWTs signed with SECRET, valid an hour."""
    return JWTStrategy(secret=SECRET, lifetime_seconds=3600)


auth_backend = AuthenticationBackend(
    name="jwt",
    transport=BearerTransport(tokenUrl="auth/jwt/login"),
    get_strategy=get_jwt_strategy,
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])


class UserRead(schemas.BaseUser[uuid.UUID]):
    """A user as returned."""


class UserUpdate(schemas.BaseUserUpdate):
    """A user update."""


app = FastAPI()
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt")
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")


async def seed(users: int, tokens_file: str, tokens: int) -> None:
    """Create the table and ``users`` users; write JWTs of the first ``tokens``."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    hashed = PasswordHelper().hash("peer bench passphrase 2026")  # once: seeding, not login
    rows = [
        {
            "id": uuid.uuid4(),
            "email": f"peer{index}@bench.example",
            "hashed_password": hashed,
            "is_active": True,
            "is_superuser": False,
            "is_verified": True,
        }
        for index in range(users)
    ]
    async with async_session_maker() as session:
        await session.execute(insert(User), rows)
        await session.commit()
        chosen = (await session.scalars(select(User).order_by(User.email).limit(tokens))).all()
        strategy = get_jwt_strategy()
        written = [await strategy.write_token(user) for user in chosen]
    await engine.dispose()
    with open(tokens_file, "w") as out:
        out.writelines(token + "\n" for token in written)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "seed":
        sys.exit("usage: python -m bench.peers.fastapi_users_app seed USERS TOKENS_FILE TOKENS")
    asyncio.run(seed(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
