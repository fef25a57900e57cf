"""Well-known discovery documents: the public signing keys."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from project.api.arguments import Blueprint
from project.api.auth import key_set

blp = Blueprint(
    "wellknown",
    __name__,
    url_prefix="/.well-known",
    description="Discovery",
    rate_limited=False,
    strict=False,
)


class JwksSchema(Schema):
    """A JSON Web Key Set (RFC 7517)."""

    keys = fields.List(fields.Dict(), required=True)


@blp.route("/jwks.json", methods=["GET"])
@blp.response(200, JwksSchema)
def jwks() -> dict[str, Any]:
    """Public keys that verify Warden's tokens (empty when tokens are HS256).

    Verify Warden's tokens yourself: the public keys by `kid`. Tokens signed by a key that is
    rotated out stay verifiable until that key is dropped.
    """
    keys = key_set()
    return keys.public_jwks() if keys else {"keys": []}
