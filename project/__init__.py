"""Warden: the application factory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Flask
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings, flask_config, settings_or_exit
from project import cli, compat, models
from project.api import docs, errors, health, metrics, middleware, v1, wellknown
from project.api.auth import register_jwt_callbacks
from project.api.json_provider import OrjsonProvider
from project.api.openapi import register_api
from project.api.ratelimits import counted_elsewhere
from project.core.db_liveness import install_liveness_check
from project.core.keys import KeySet
from project.core.logging import configure_logging as configure_log_output
from project.core.security import HASHING_KEY, HashingSlots
from project.core.settings import SETTINGS_KEY, current_settings
from project.extensions import api, cors, db, jwt, limiter, migrate, redis_client
from project.repositories.user_cache import install_invalidation
from project.services import providers

__all__ = ["create_app", "models"]

logger = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SYNCED_LIMIT = 1024


class Warden(Flask):
    """Flask, deciding once per hook or view whether it is a coroutine function, and
    writing JSON with orjson."""

    json_provider_class = OrjsonProvider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's, remembered: it inspects each of a request's dozen hooks and its view."""
        synced = self.synced.get(func)
        if synced is None:
            synced = super().ensure_sync(func)
            if len(self.synced) < SYNCED_LIMIT:  # hooks and views are few; stay bounded
                self.synced[func] = synced
        return synced


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask application (from the process's settings by default)."""
    if settings is None:
        settings = settings_or_exit()
    app = Warden(__name__, static_folder=None)
    app.extensions[SETTINGS_KEY] = settings
    app.config.from_mapping(flask_config(settings))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # "//" in a path is a 404 like any unknown path, not a redirect to a Location built
    # from the Host header.
    app.url_map.merge_slashes = False
    configure_logging(app)
    trust_proxies(app)
    register_request_hooks(app)  # first, so even a rate-limited request gets its id
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure_logging(app: Flask) -> None:
    """Send JSON log lines (or readable ones) to stderr."""
    settings = current_settings(app)
    configure_log_output(level=settings.LOG_LEVEL, fmt=settings.LOG_FORMAT)


def trust_proxies(app: Flask) -> None:
    """Read the client address from X-Forwarded-For only through TRUSTED_PROXIES hops."""
    hops = current_settings(app).TRUSTED_PROXIES
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    """Bind every extension to ``app``."""
    db.init_app(app)
    app.teardown_appcontext(end_database_session)
    install_invalidation()
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            if db.engine.url.database not in (None, "", ":memory:"):
                Path(db.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
            event.listen(db.engine, "connect", _sqlite_pragmas)
        install_liveness_check(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    redis_client.init_app(app)
    jwt.init_app(app)
    if current_settings(app).JWT_SIGNING_KEYS:
        app.extensions["warden.keys"] = KeySet(list(current_settings(app).JWT_SIGNING_KEYS))
    register_jwt_callbacks(jwt)
    app.extensions[HASHING_KEY] = HashingSlots(current_settings(app).HASHING_SLOTS)
    limiter.init_app(app)
    if current_settings(app).RATELIMIT_ENABLED:  # else Flask-Limiter installs no hooks
        compat.gate_limiter_hooks(app, limiter, counted_elsewhere)
    if current_settings(app).CORS_ORIGINS:  # else no origin is granted: nothing to run
        cors.init_app(
            app,
            resources={r"/api/*": {"origins": list(current_settings(app).CORS_ORIGINS)}},
            supports_credentials=True,
            max_age=600,  # browsers may cache a preflight for ten minutes
            allow_headers=["Authorization", "Content-Type", "X-CSRF-TOKEN", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "WWW-Authenticate",
            ],
        )
    providers.install(app, current_settings(app))
    optional = v1.optional_domains(current_settings(app))
    register_api(api, app, tagged=(health.blp, wellknown.blp, *v1.DOMAINS, *optional))


def end_database_session(_error: BaseException | None) -> None:
    """Close the request's session; drop it if its connection died after the last query.

    Registered after Flask-SQLAlchemy's teardown, so it runs first: a rollback on a dead
    connection would otherwise escape the app and spoil an answer already computed.
    """
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        logger.warning("database session cleanup failed: %s", type(exc).__name__)
        db.session().invalidate()
        db.session.remove()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked per connection.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def register_blueprints(app: Flask) -> None:
    """Mount the health probes, the discovery documents, API v1 and the docs pages' files."""
    api.register_blueprint(health.blp)
    api.register_blueprint(wellknown.blp)
    api.register_blueprint(v1.blp)
    for domain in v1.optional_domains(current_settings(app)):
        api.register_blueprint(domain)
    app.register_blueprint(metrics.blp)
    app.register_blueprint(docs.blp)
    # Probes and discovery documents are polled by machines, and a docs page loads several
    # files at once: never rate limit them.
    for blueprint in (health.blp, wellknown.blp, metrics.blp, docs.blp):
        limiter.exempt(blueprint)
    limiter.exempt(cast(Blueprint, app.blueprints["api-docs"]))


def register_error_handlers(app: Flask) -> None:
    """Make every error a problem+json response (after flask-smorest's, replacing them)."""
    errors.register_error_handlers(app)


def register_request_hooks(app: Flask) -> None:
    """Request ids, access log and security headers."""
    middleware.register_request_hooks(app)


def register_commands(app: Flask) -> None:
    """Add the ``flask users`` commands."""
    cli.register_commands(app)
