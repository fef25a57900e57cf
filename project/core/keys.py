"""Asymmetric signing keys (RS256 or EdDSA) with key ids, and their public JWK Set."""

from __future__ import annotations

from typing import Any

from jwt import PyJWK
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidTokenError


class KeySet:
    """Private keys by ``kid``; the first one signs, the others still verify until dropped."""

    def __init__(self, jwks: list[dict[str, Any]]) -> None:
        self._keys = {jwk["kid"]: PyJWK(jwk) for jwk in jwks}
        self.current_kid: str = jwks[0]["kid"]
        self.algorithm: str = jwks[0]["alg"]

    def signing_key(self) -> Any:
        """The private key that signs new tokens."""
        return self._keys[self.current_kid].key

    def verification_key(self, kid: object) -> Any:
        """The public key for ``kid``; a token naming an unknown key is invalid."""
        if not isinstance(kid, str) or kid not in self._keys:
            raise InvalidTokenError("The token was signed with an unknown key.")
        return self._keys[kid].key.public_key()

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public halves, as served at /.well-known/jwks.json."""
        keys = []
        for kid, jwk in self._keys.items():
            encoder = RSAAlgorithm if self.algorithm == "RS256" else OKPAlgorithm
            public = encoder.to_jwk(jwk.key.public_key(), as_dict=True)
            # RFC 7517 4.3: a key should not carry both "use" and "key_ops"; "use" is the
            # member JWKS clients read.
            public.pop("key_ops", None)
            keys.append({**public, "kid": kid, "alg": self.algorithm, "use": "sig"})
        return {"keys": keys}
