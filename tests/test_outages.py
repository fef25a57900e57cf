"""One-line reasons for an unusable database or Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from project.core.outages import describe_database_error, describe_redis_error


def test_an_unopenable_sqlite_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    url = f"sqlite:///{tmp_path / 'file' / 'warden.db'}"
    with pytest.raises(OperationalError) as failure:
        create_engine(url).connect()
    assert describe_database_error(failure.value, url) == (
        f"database unreachable at {tmp_path / 'file' / 'warden.db'}: unable to open database file"
    )


def test_a_password_in_a_message_is_redacted() -> None:
    url = "postgresql+psycopg://warden:hunter2@db.internal/warden"
    error = OperationalError("SELECT 1", {}, Exception('auth "hunter2" refused\ndetail'))
    assert describe_database_error(error, url) == (
        'database unreachable at db.internal:5432: auth "***" refused'
    )
    redis_error = RedisConnectionError("AUTH hunter2 failed")
    assert describe_redis_error(redis_error, "redis://:hunter2@cache:6379/0") == (
        "Redis unreachable: AUTH *** failed"
    )
