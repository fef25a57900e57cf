"""A probe, not a configuration: Warden with nothing shared on an authenticated read's path.

No rate limit is counted (RATELIMIT_ENABLED=false) and a session, once checked, is answered
from this worker's memory forever: a warm request makes no Redis or PostgreSQL round trip.
That gives up what Warden must guarantee (a logout refused by every instance at once,
limits shared by every instance); the probe measures how fast Warden could be without
them. Used as a checkout's wsgi.py (bench/README.md, "Probes"):

    git worktree add --detach /tmp/probe HEAD
    cp bench/probes/nothing_shared.py /tmp/probe/wsgi.py
    .venv/bin/python bench/run.py --only users_me,refresh,admin_list \\
        --target warden=. --target probe=/tmp/probe
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

os.environ["RATELIMIT_ENABLED"] = "false"

from project import create_app
from project.services import access

_check = access.check
_known: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}


def remembered(claims: Mapping[str, Any], *, count: bool) -> Any:
    """The first answer for a session, kept for the worker's life (a probe, not a cache)."""
    key = access.claimed_ids(claims)
    if key not in _known:
        _known[key] = _check(claims, count=False)
    return _known[key]


access.check = remembered
app = create_app()
