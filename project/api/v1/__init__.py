"""API version 1: one blueprint under /api/v1 that nests the domain blueprints."""

from project.api.arguments import Blueprint
from project.api.v1.endpoints import admin, auth, factors, passkeys, users

blp = Blueprint("v1", __name__, url_prefix="/api/v1", description="API version 1")
DOMAINS = (auth.blp, factors.blp, passkeys.blp, users.blp, admin.blp)
for domain in DOMAINS:
    blp.register_blueprint(domain)
