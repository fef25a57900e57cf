"""gunicorn settings, read from the same environment as the app (Heroku style)."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Metrics are shared by the workers through files; the directory must be known before any
# project module (and so prometheus-client) is imported, here and in every worker.
PROMETHEUS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(tempfile.gettempdir()) / f"warden-prometheus-{os.environ.get('PORT') or '8000'}"),
)
os.makedirs(PROMETHEUS_DIR, exist_ok=True)

from config import ConfigError, env_bool, load_config  # noqa: E402

# Refuse to start, in one line, when the configuration is unsafe (before any worker boots).
try:
    settings = load_config()
    # The app writes one JSON line per request itself; GUNICORN_ACCESS_LOG=1 adds gunicorn's.
    ACCESS_LOG = env_bool(os.environ, "GUNICORN_ACCESS_LOG", False)
except ConfigError as exc:
    sys.exit(f"warden: configuration error: {exc}")

bind = f"{os.environ.get('HOST') or '0.0.0.0'}:{settings.PORT}"  # noqa: S104
# gunicorn 27's control socket (for gunicornc) defaults to one path per user: a second
# instance on the same machine would take it over, and stopping either would remove it.
control_socket = str(Path(tempfile.gettempdir()) / f"warden-gunicorn-{settings.PORT}.ctl")
workers = settings.WEB_CONCURRENCY
worker_class = "sync"
timeout = 30
# Heroku sends SIGKILL 30 s after SIGTERM; in-flight requests get 25 s to finish.
graceful_timeout = 25
keepalive = 5
accesslog = "-" if ACCESS_LOG else None
# No Referer: a page on the API's origin could carry a mailed link's token in it.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
# Trust X-Forwarded-Proto only when the app trusts proxies for X-Forwarded-For too.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or (
    "*" if settings.TRUSTED_PROXIES else "127.0.0.1"
)

_FORMATTER = "console" if settings.LOG_FORMAT == "console" else "json"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "project.core.logging.JsonFormatter"},
        "console": {"()": "project.core.logging.ConsoleFormatter"},
    },
    "filters": {"context": {"()": "project.core.logging.ContextFilter"}},
    # Named like the handler create_app installs, which replaces it: one line per record.
    "handlers": {
        "warden": {
            "class": "logging.StreamHandler",
            "formatter": _FORMATTER,
            "filters": ["context"],
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["warden"], "level": settings.LOG_LEVEL},
    "loggers": {
        "gunicorn.error": {"handlers": ["warden"], "level": settings.LOG_LEVEL, "propagate": False},
        "gunicorn.access": {
            "handlers": ["warden"] if ACCESS_LOG else [],
            "level": "INFO" if ACCESS_LOG else "CRITICAL",
            "propagate": False,
        },
    },
}


def on_starting(server: object) -> None:
    """Start with an empty metrics directory: samples of earlier runs must not count."""
    shutil.rmtree(PROMETHEUS_DIR, ignore_errors=True)
    os.makedirs(PROMETHEUS_DIR, exist_ok=True)


def on_exit(server: object) -> None:
    """Remove this instance's metrics files."""
    shutil.rmtree(PROMETHEUS_DIR, ignore_errors=True)


def child_exit(server: object, worker: object) -> None:
    """Tell prometheus-client a worker died, so its live gauges stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
