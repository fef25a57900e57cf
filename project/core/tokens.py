"""JWT access and refresh tokens (flask-jwt-extended does the signing)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_jwt_extended import create_access_token, create_refresh_token


@dataclass(frozen=True)
class TokenPair:
    """What a client receives after login or refresh."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def new_token_id() -> str:
    """Return a fresh, unguessable token id (``jti``)."""
    return uuid.uuid4().hex


def issue_token_pair(
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    refresh_jti: str,
    token_version: int,
    access_ttl: int,
    refresh_ttl: int,
    amr: Sequence[str] = ("pwd",),
    auth_time: datetime | None = None,
) -> TokenPair:
    """Sign an access token and a refresh token bound to one session.

    The access token says how (``amr``) and when (``auth_time``, epoch seconds) its session
    was authenticated, as OpenID Connect's ID tokens do.
    """
    sid = str(session_id)
    access = create_access_token(
        identity=str(user_id),
        expires_delta=timedelta(seconds=access_ttl),
        additional_claims={
            "sid": sid,
            "ver": token_version,
            "amr": list(amr),
            "auth_time": int((auth_time or datetime.now(UTC)).timestamp()),
        },
    )
    refresh = create_refresh_token(
        identity=str(user_id),
        expires_delta=timedelta(seconds=refresh_ttl),
        additional_claims={"sid": sid, "jti": refresh_jti},
    )
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=access_ttl)
