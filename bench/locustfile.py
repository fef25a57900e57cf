"""A mixed Locust scenario for Warden: sign up, log in, read the profile, refresh, log out.

Locust is a dev dependency (requirements-dev.txt; tests/test_locustfile.py runs this
scenario against a live deployment in both modes and requires zero failures):

    locust -f bench/locustfile.py --host http://127.0.0.1:8000                 # web UI
    locust -f bench/locustfile.py --host http://127.0.0.1:8000 \\
           --headless --users 20 --spawn-rate 2 --run-time 2m                  # no UI

Each simulated person registers a new account (or, with WARDEN_LOCUST_SEEDED=N, logs in
as one of N users made by `flask seed-users N`), then mostly reads its profile, now and
then lists its sessions, refreshes its token pair when the access token is due (or on a
401), and sometimes logs out and back in. Rate limits count per client IP and every Locust
user shares one address, so lift them on the deployment under test (see bench/README.md).

Settings (environment):
    WARDEN_LOCUST_PASSWORD   password for registered accounts
    WARDEN_LOCUST_SEEDED     log in as seeded users instead of registering (their count)
    WARDEN_LOCUST_PREFIX     seeded email prefix (seed-users --prefix, default "seed")
    WARDEN_LOCUST_SEEDED_PASSWORD  seeded password (seed-users --password)
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, task

PASSWORD = os.environ.get("WARDEN_LOCUST_PASSWORD", "locust orbit staple 2026")
SEEDED = int(os.environ.get("WARDEN_LOCUST_SEEDED", "0"))
SEED_PREFIX = os.environ.get("WARDEN_LOCUST_PREFIX", "seed")
SEED_PASSWORD = os.environ.get("WARDEN_LOCUST_SEEDED_PASSWORD", "seeded password 2026")
API = "/api/v1"


class Member(HttpUser):
    """One person using a client app: mostly reads, a refresh when due, rare logins."""

    wait_time = between(1, 3)

    email: str
    password: str
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_at: float = 0.0

    def on_start(self) -> None:
        """Get an account (register, or pick a seeded one), then log in."""
        if SEEDED:
            # seed-users makes every 50th account inactive; skip those.
            index = 0
            while index % 50 == 0:
                index = random.randrange(max(SEEDED, 2))  # noqa: S311 - not a secret
            self.email = f"{SEED_PREFIX}{index:07d}@seed.example"
            self.password = SEED_PASSWORD
        else:
            self.email = f"locust-{uuid.uuid4().hex[:16]}@bench.example"
            self.password = PASSWORD
            self.client.post(
                f"{API}/auth/register",
                json={"email": self.email, "password": self.password, "full_name": "Locust"},
                name="register",
            )
        self.log_in()

    def on_stop(self) -> None:
        """End the session like a well-behaved client."""
        if self.access_token:
            self.client.post(f"{API}/auth/logout", headers=self._auth(), name="logout")

    def log_in(self) -> None:
        """POST /auth/login and keep the pair."""
        with self.client.post(
            f"{API}/auth/login",
            json={"email": self.email, "password": self.password},
            name="login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login answered {response.status_code}")
                self.access_token = self.refresh_token = None
                return
            self._keep(response.json())

    def _keep(self, pair: dict[str, Any]) -> None:
        self.access_token = pair["access_token"]
        self.refresh_token = pair["refresh_token"]
        # Refresh a little before the access token expires, as a client app would.
        self.access_expires_at = time.monotonic() + int(pair["expires_in"]) * 0.9

    def _auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.access_token}"}

    def refresh(self) -> bool:
        """POST /auth/refresh with the refresh token; the old one stops working."""
        if not self.refresh_token:
            self.log_in()
            return self.access_token is not None
        with self.client.post(
            f"{API}/auth/refresh",
            headers=self._auth(self.refresh_token),
            name="refresh",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"refresh answered {response.status_code}")
                self.log_in()
                return self.access_token is not None
            self._keep(response.json())
            return True

    def _authorized_get(self, path: str, name: str) -> None:
        due = not self.access_token or time.monotonic() >= self.access_expires_at
        if due and not self.refresh():
            return
        with self.client.get(path, headers=self._auth(), name=name, catch_response=True) as r:
            if r.status_code == 401 and self.refresh():
                r.success()  # an expired token is normal; retried below
                self.client.get(path, headers=self._auth(), name=name)
            elif r.status_code != 200:
                r.failure(f"{name} answered {r.status_code}")

    @task(12)
    def read_profile(self) -> None:
        """GET /users/me: what a client does on every screen."""
        self._authorized_get(f"{API}/users/me", "users/me")

    @task(3)
    def list_sessions(self) -> None:
        """GET /auth/sessions: the account's devices page."""
        self._authorized_get(f"{API}/auth/sessions", "auth/sessions")

    @task(2)
    def rotate_tokens(self) -> None:
        """POST /auth/refresh: a client coming back after a while."""
        self.refresh()

    @task(1)
    def log_out_and_in(self) -> None:
        """POST /auth/logout, then log in again (a new session, one bcrypt verify)."""
        if self.access_token:
            self.client.post(f"{API}/auth/logout", headers=self._auth(), name="logout")
        self.access_token = self.refresh_token = None
        self.log_in()
