"""API version 1: one blueprint under /api/v1 that nests the domain blueprints."""

from config import Settings
from project.api.arguments import Blueprint
from project.api.v1.endpoints import admin, auth, factors, identities, passkeys, users

blp = Blueprint("v1", __name__, url_prefix="/api/v1", description="API version 1")
DOMAINS = (auth.blp, factors.blp, passkeys.blp, users.blp, admin.blp)
for domain in DOMAINS:
    blp.register_blueprint(domain)


def optional_domains(settings: Settings) -> tuple[Blueprint, ...]:
    """The domains mounted only when configured: provider and emailed sign-in."""
    found = []
    if settings.OIDC_PROVIDERS or settings.GITHUB_CLIENT_ID:
        found.append(identities.providers_blp)
    if settings.EMAIL_SIGNIN:
        found.append(identities.email_blp)
    return tuple(found)
