"""Under a login and registration flood, probes and token reads stay served (gunicorn, live)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, is_postgres
from tests.flood import flood
from tests.live import Deployment, call, production_env, serving

# Threads and the hashing budget are the PostgreSQL defaults; SQLite runs one sync worker.
pytestmark = [
    pytest.mark.live,
    pytest.mark.postgres,
    pytest.mark.skipif(not is_postgres(), reason="needs TEST_DATABASE_URL on PostgreSQL"),
]
OUT_OF_REACH = "100000 per minute"


@pytest.fixture
def deployment(empty_database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """Production settings at the real bcrypt cost, limits out of the flood's reach."""
    env = production_env(
        empty_database_url,
        BCRYPT_ROUNDS="12",
        RATELIMIT_LOGIN=OUT_OF_REACH,
        RATELIMIT_REGISTER=OUT_OF_REACH,
        RATELIMIT_DEFAULT=OUT_OF_REACH,
        RATELIMIT_ACCOUNT=OUT_OF_REACH,
        HASHING_SLOTS="1",
    )
    with serving(env, tmp_path) as deploy:
        yield deploy


def test_a_hashing_flood_leaves_probes_and_reads_served(deployment: Deployment) -> None:
    base = deployment.base
    body = {"email": "reader@example.com", "password": PASSWORD}
    assert call(base, "POST", "/api/v1/auth/register", body)[0] == 201
    token = call(base, "POST", "/api/v1/auth/login", body)[1]["access_token"]

    result = flood(base, token=token, flooders=24, seconds=6)

    busy = [answer for answer in result.floods if answer.status == 503]
    hashed = [answer for answer in result.floods if answer.status in (201, 401)]
    assert busy and hashed, {answer.status for answer in result.floods}
    assert all(answer.retry_after == "1" for answer in busy)
    assert {answer.status for answer in result.probes["me"]} == {200}
    assert {answer.status for answer in result.probes["live"]} == {200}
    # Bounds far above what an idle box shows (about 10 ms), far below one bcrypt hash
    # queued behind others (seconds): robust on a loaded CI machine, failing without threads.
    assert result.percentile_ms("live", 50) < 100
    assert result.percentile_ms("live", 99) < 1000
    slowest_hash = max(answer.seconds for answer in hashed)
    assert sorted(answer.seconds for answer in busy)[len(busy) // 2] < slowest_hash
