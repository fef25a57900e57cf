"""bench/locustfile.py drives a live deployment with Locust and every request succeeds."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import RATELIMIT_SETTINGS
from tests.live import BIN, ROOT, Deployment, production_env, serving

pytestmark = pytest.mark.live

SEEDED = 60
SEED_PASSWORD = "locust test seed password"


@pytest.fixture
def deployment(empty_database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A production deployment with the limits lifted (every Locust user shares one IP)."""
    env = production_env(
        empty_database_url,
        # Short-lived access tokens, so the scenario's refresh-when-due path runs too.
        ACCESS_TOKEN_TTL="2",
        **dict.fromkeys(RATELIMIT_SETTINGS, "1000000 per minute"),
    )
    with serving(env, tmp_path) as deploy:
        yield deploy


def run_locust(deployment: Deployment, folder: Path, **env: str) -> dict[str, tuple[int, int]]:
    """Run the scenario headless for a few seconds; return requests and failures per name."""
    report = folder / "locust"
    result = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--host",
            deployment.base,
            "--headless",
            "--users",
            "12",
            "--spawn-rate",
            "12",
            "--run-time",
            "8s",
            "--stop-timeout",
            "5",
            "--json-file",
            str(report),
        ],
        cwd=folder,
        env={**deployment.env, **env},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stats = json.loads(report.with_suffix(".json").read_text())
    return {entry["name"]: (entry["num_requests"], entry["num_failures"]) for entry in stats}


def test_the_mixed_scenario_registers_and_runs_without_failures(
    deployment: Deployment, tmp_path: Path
) -> None:
    stats = run_locust(deployment, tmp_path)
    assert {"register", "login", "users/me", "refresh", "logout"} <= stats.keys(), stats
    assert stats["register"][0] == 12 and stats["logout"][0] >= 12
    assert stats["refresh"][0] > 0 and stats["users/me"][0] > 0
    assert all(failures == 0 for _, failures in stats.values()), stats


def test_the_mixed_scenario_logs_in_as_seeded_users(deployment: Deployment, tmp_path: Path) -> None:
    subprocess.run(
        [str(BIN / "flask"), "seed-users", str(SEEDED), "--force", "--password", SEED_PASSWORD],
        cwd=ROOT,
        env=deployment.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    stats = run_locust(
        deployment,
        tmp_path,
        WARDEN_LOCUST_SEEDED=str(SEEDED),
        WARDEN_LOCUST_SEEDED_PASSWORD=SEED_PASSWORD,
    )
    assert "register" not in stats
    assert stats["login"][0] >= 12 and stats["users/me"][0] > 0
    assert all(failures == 0 for _, failures in stats.values()), stats
