"""gunicorn settings, read from the same environment as the app (Heroku style)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from config import ConfigError, load_config

# Refuse to start, in one line, when the configuration is unsafe (before any worker boots).
try:
    load_config()
except ConfigError as exc:
    sys.exit(f"warden: configuration error: {exc}")

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 25  # Heroku sends SIGKILL 30 s after SIGTERM
keepalive = 5
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
