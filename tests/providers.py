"""Identity providers for the suite, all on loopback.

``OidcProvider`` runs panva/oidc-provider (node, pinned in package.json) through
tests/oidc_provider.mjs. ``StandIn`` is a small werkzeug app that plays GitHub's OAuth and
API endpoints, or an OpenID provider whose ID tokens a test shapes at will (wrong
audience, expired, wrong nonce), which no honest provider would send.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.mailbox import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "oidc_provider.mjs"
CLIENT_ID = "warden-suite"
CLIENT_SECRET = "suite-client-secret-0123456789"


def node_missing() -> str | None:
    """Why the real provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is missing"
    if not (ROOT / "node_modules" / "oidc-provider").is_dir():
        return "node_modules/oidc-provider is missing (npm ci)"
    return None


class OidcProvider:
    """oidc-provider in a node process, with one client per redirect URI given."""

    def __init__(self, *, redirect_uris: list[str], accounts: dict[str, dict[str, Any]]) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        config = {
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": redirect_uris,
                },
                {
                    "client_id": "another-client",
                    "client_secret": "another-client-secret-0123456789",
                    "redirect_uris": redirect_uris,
                },
            ],
            "accounts": accounts,
        }
        self.log = tempfile.NamedTemporaryFile(prefix="oidc-provider-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), str(self.port)],
            env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while b"listening" not in Path(self.log.name).read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider did not start: {self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        """What the provider printed (its errors included)."""
        return Path(self.log.name).read_text(errors="replace")

    def setting(self, name: str = "local", client_id: str = CLIENT_ID) -> dict[str, str]:
        """An OIDC_PROVIDERS entry for this provider."""
        secret = CLIENT_SECRET if client_id == CLIENT_ID else "another-client-secret-0123456789"
        return {
            "name": name,
            "issuer": self.issuer,
            "client_id": client_id,
            "client_secret": secret,
            "title": "Local OP",
        }

    def stop(self) -> None:
        """End the node process."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
INPUT = re.compile(r"<input([^>]*)>")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


def sign_in_at_provider(browser: requests.Session, url: str, login: str) -> str:
    """Follow ``url`` through the provider's login and consent as a browser would; return
    the URL it finally redirects to outside the provider (the callback)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    response = browser.get(url, allow_redirects=False)
    for _ in range(12):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if not location.startswith(origin):
                return location
            response = browser.get(location, allow_redirects=False)
            continue
        page = response.text
        found = FORM.search(page)
        assert found, page[:2000]
        action, body = found.groups()
        inputs = [dict(ATTRIBUTE.findall(attributes)) for attributes in INPUT.findall(body)]
        fields = {item["name"]: html.unescape(item.get("value", "")) for item in inputs}
        if "login" in fields:
            fields.update(login=login, password="any-password")
        response = browser.post(
            urljoin(response.url, html.unescape(action)), data=fields, allow_redirects=False
        )
    raise AssertionError("the provider never redirected back")


class StandIn:
    """GitHub's endpoints, or an OpenID provider with ID tokens shaped by ``claims``.

    ``github_user`` and ``github_emails`` are what GitHub's API answers; ``claims``
    overrides the ID token's claims (``None`` removes one).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, Any]] = {}
        self.github_user: dict[str, Any] = {"id": 4242, "login": "octo", "name": "Octo Cat"}
        self.github_emails: list[dict[str, Any]] = []
        self.claims: dict[str, Any] = {}
        self.client_id = CLIENT_ID
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def setting(self, name: str = "rogue") -> dict[str, str]:
        """An OIDC_PROVIDERS entry for this stand-in as an OpenID provider."""
        return {
            "name": name,
            "issuer": self.url,
            "client_id": self.client_id,
            "client_secret": CLIENT_SECRET,
        }

    def jwk(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()

        def encode(value: int) -> str:
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
                "n": encode(numbers.n), "e": encode(numbers.e)}  # fmt: skip

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        if path == "/.well-known/openid-configuration":
            body: Any = {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        elif path == "/jwks":
            body = {"keys": [self.jwk()]}
        elif path in ("/authorize", "/login/oauth/authorize"):
            code = secrets.token_urlsafe(16)
            self.codes[code] = dict(request.args)
            target = (
                request.args["redirect_uri"]
                + "?"
                + urlencode({"code": code, "state": request.args["state"]})
            )
            return Response(status=302, headers={"Location": target})(environ, start_response)
        elif path in ("/token", "/login/oauth/access_token"):
            started = self.codes.pop(request.form.get("code", ""), None)
            verifier = request.form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if started is None or started["code_challenge"] != challenge.rstrip(b"=").decode():
                body = {"error": "invalid_grant"}
                return Response(json.dumps(body), 400, mimetype="application/json")(
                    environ, start_response
                )
            body = {"access_token": secrets.token_urlsafe(16), "token_type": "bearer"}
            if "openid" in started.get("scope", ""):
                body["id_token"] = self.id_token(started.get("nonce"))
        elif path == "/user":
            body = self.github_user
        elif path == "/user/emails":
            body = self.github_emails
        else:
            return Response("not found", 404)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url, "sub": "rogue-subject", "aud": self.client_id, "iat": now,
            "exp": now + 300, "nonce": nonce, "email": "rogue@example.org",
            "email_verified": True,
        }  # fmt: skip
        claims.update(self.claims)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()


@contextmanager
def stand_in() -> Iterator[StandIn]:
    """A running stand-in, stopped afterwards."""
    server = StandIn()
    try:
        yield server
    finally:
        server.stop()
