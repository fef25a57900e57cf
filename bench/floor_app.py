"""The floor: the least a Flask app under the same gunicorn can do to answer one user JSON.

No authentication, no database, no Redis, no extensions: one route that serializes the same
user document Warden returns from GET /api/v1/users/me. The harness runs it with Warden's
own gunicorn.conf.py (same worker count, sync workers), so the ratio Warden / floor isolates
what Warden itself costs per request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask

# What GET /api/v1/users/me answers; the harness writes the real one and sets BENCH_FLOOR_BODY.
SAMPLE: dict[str, Any] = {
    "id": "0c1e8a9e-6a55-4f61-9d64-9e5a6f0f4b2d",
    "email": "bench0000001@seed.example",
    "full_name": "Seeded User 1",
    "role": "user",
    "is_active": True,
    "email_verified": True,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}


def load_body() -> dict[str, Any]:
    """The user document to serve."""
    path = os.environ.get("BENCH_FLOOR_BODY")
    if not path:
        return dict(SAMPLE)
    body: dict[str, Any] = json.loads(Path(path).read_text())
    return body


def create_floor_app() -> Flask:
    """A bare Flask app answering every GET with the user document, serialized per request."""
    floor = Flask(__name__, static_folder=None)
    floor.json.sort_keys = False  # type: ignore[attr-defined]
    user = load_body()

    @floor.get("/", defaults={"path": ""})
    @floor.get("/<path:path>")
    def user_json(path: str) -> dict[str, Any]:
        return user

    return floor


app = create_floor_app()
