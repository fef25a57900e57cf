"""The identity providers of this app, through Authlib's Flask client.

OpenID Connect providers come from OIDC_PROVIDERS (discovery, JWKS and the ID token's
checks by Authlib), GitHub from GITHUB_CLIENT_ID as plain OAuth 2 (its user and
verified-email API). Each app holds its own Authlib registry, so apps built with
different settings (tests, several deployments in one process) never share a client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from joserfc.errors import JoseError

from config import Settings
from project.core import errors

EXTENSION_KEY = "warden.providers"
GITHUB = "github"


@dataclass(frozen=True)
class Profile:
    """Who the provider says signed in: a stable subject and, maybe, a verified email."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what the callback must match."""

    url: str
    state: str
    nonce: str | None
    code_verifier: str


@dataclass(frozen=True)
class Provider:
    """One configured provider and its Authlib client."""

    name: str
    title: str
    kind: str  # "oidc" or "github"
    client: Any
    issuer: str | None = None

    def authorize(self, redirect_uri: str) -> Authorization:
        """Build the authorization URL with a fresh state, nonce (OIDC) and PKCE verifier."""
        with _provider_calls():
            found = self.client.create_authorization_url(redirect_uri)
        return Authorization(
            url=found["url"],
            state=found["state"],
            nonce=found.get("nonce"),
            code_verifier=found["code_verifier"],
        )

    def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str | None
    ) -> Profile:
        """Trade the code for tokens and read who signed in (the ID token, or GitHub's API)."""
        with _provider_calls():
            token = self.client.fetch_access_token(
                redirect_uri=redirect_uri, code=code, code_verifier=code_verifier
            )
            if self.kind == GITHUB:
                return self._github_profile(token)
            return self._oidc_profile(token, nonce)

    def _oidc_profile(self, token: dict[str, Any], nonce: str | None) -> Profile:
        if "id_token" not in token or nonce is None:
            raise errors.InvalidIdToken("The provider sent no ID token.")
        try:
            # The issuer is the configured one, not whatever discovery said (mix-up attacks).
            claims = self.client.parse_id_token(
                token, nonce=nonce, claims_options={"iss": {"values": [self.issuer]}}, leeway=60
            )
        except (JoseError, ValueError) as exc:
            raise errors.InvalidIdToken(f"The ID token was refused: {exc}") from None
        email = claims.get("email")
        return Profile(
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            email_verified=claims.get("email_verified") is True,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
        )

    def _github_profile(self, token: dict[str, Any]) -> Profile:
        user = self.client.get("user", token=token)
        user.raise_for_status()
        emails = self.client.get("user/emails", token=token)
        emails.raise_for_status()
        account = user.json()
        primary = next(
            (item for item in emails.json() if item.get("primary") and item.get("verified")),
            None,
        )
        return Profile(
            subject=str(account["id"]),
            email=primary["email"] if primary else None,
            email_verified=primary is not None,
            name=account.get("name") or account.get("login"),
        )


@contextmanager
def _provider_calls() -> Iterator[None]:
    """Turn the provider's refusals and silences into Warden's problems."""
    try:
        yield
    except errors.AppError:
        raise
    except OAuthError as exc:
        raise errors.ProviderRefused(f"The provider refused: {exc.error or 'error'}.") from None
    except requests.HTTPError:
        raise errors.ProviderRefused("The provider refused the request.") from None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise errors.ProviderUnavailable("The identity provider could not be read.") from None


def install(app: Flask, settings: Settings) -> None:
    """Register the configured providers with an Authlib client of this app's own."""
    oauth = OAuth(app)
    found: dict[str, Provider] = {}
    client_kwargs = {"code_challenge_method": "S256", "default_timeout": settings.PROVIDER_TIMEOUT}
    for item in settings.OIDC_PROVIDERS:
        client = oauth.register(
            item.name,
            client_id=item.client_id,
            client_secret=item.client_secret,
            server_metadata_url=f"{item.issuer}/.well-known/openid-configuration",
            client_kwargs={**client_kwargs, "scope": item.scopes},
        )
        title = item.title or item.name.title()
        found[item.name] = Provider(item.name, title, "oidc", client, issuer=item.issuer)
    if settings.GITHUB_CLIENT_ID and settings.GITHUB_CLIENT_SECRET:
        client = oauth.register(
            GITHUB,
            client_id=settings.GITHUB_CLIENT_ID,
            client_secret=settings.GITHUB_CLIENT_SECRET,
            authorize_url=f"{settings.GITHUB_URL}/login/oauth/authorize",
            access_token_url=f"{settings.GITHUB_URL}/login/oauth/access_token",
            api_base_url=f"{settings.GITHUB_API_URL}/",
            client_kwargs={**client_kwargs, "scope": "read:user user:email"},
        )
        found[GITHUB] = Provider(GITHUB, "GitHub", GITHUB, client)
    app.extensions[EXTENSION_KEY] = found


def configured(app: Flask | None = None) -> dict[str, Provider]:
    """The app's providers by name (empty when none is configured)."""
    providers: dict[str, Provider] = (app or current_app).extensions.get(EXTENSION_KEY, {})
    return providers


def get(name: str) -> Provider:
    """The provider called ``name``; 404 when there is none."""
    provider = configured().get(name)
    if provider is None:
        raise errors.NotFound("No such identity provider.")
    return provider
