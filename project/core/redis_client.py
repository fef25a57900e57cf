"""A Flask extension holding one redis-py client per app, or None without REDIS_URL."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis

from config import redis_tls_options
from project.core.settings import current_settings

# Redis answers in well under a millisecond; anything slower is treated as an outage so a
# sick Redis cannot stall requests.
SOCKET_TIMEOUT = 0.5


class RedisClient:
    """Binds a Redis client to each app from its REDIS_URL."""

    def init_app(self, app: Flask) -> None:
        """Create the client for ``app`` (None when REDIS_URL is unset)."""
        settings = current_settings(app)
        url = settings.REDIS_URL
        if not url:
            app.extensions["redis"] = app.extensions["redis.queue"] = None
            return
        options = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            **redis_tls_options(url, verify=settings.REDIS_TLS_VERIFY),
        }
        app.extensions["redis"] = Redis.from_url(
            url, health_check_interval=30, decode_responses=True, **options
        )
        # RQ pickles job payloads and needs a connection that returns bytes.
        app.extensions["redis.queue"] = Redis.from_url(url, **options)

    @property
    def queue_connection(self) -> Redis | None:
        """The current app's connection for the job queue, or None."""
        connection: Redis | None = current_app.extensions.get("redis.queue")
        return connection

    @property
    def client(self) -> Redis | None:
        """The current app's client, or None."""
        client: Redis | None = current_app.extensions.get("redis")
        return client
