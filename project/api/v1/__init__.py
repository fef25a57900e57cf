"""API version 1: one blueprint under /api/v1 that nests the domain blueprints."""

from project.api.arguments import Blueprint
from project.api.v1.endpoints import admin, auth, users

blp = Blueprint("v1", __name__, url_prefix="/api/v1")
blp.register_blueprint(auth.blp)
blp.register_blueprint(users.blp)
blp.register_blueprint(admin.blp)
