"""gunicorn settings, read from the same environment as the app (Heroku style)."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from config import settings_or_exit

# Refuse to start, naming every bad setting, before any worker boots.
settings = settings_or_exit()
# Metrics are shared by the workers through files; the directory must be in the environment
# before any project module (and so prometheus-client) is imported, here and in every worker.
PROMETHEUS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR
)
os.makedirs(PROMETHEUS_DIR, exist_ok=True)
# The app writes one JSON line per request itself; GUNICORN_ACCESS_LOG=1 adds gunicorn's.
ACCESS_LOG = settings.GUNICORN_ACCESS_LOG

bind = f"{settings.HOST}:{settings.PORT}"
# gunicorn 27's control socket (for gunicornc) defaults to one path per user: a second
# instance on the same machine would take it over, and stopping either would remove it.
control_socket = str(Path(tempfile.gettempdir()) / f"warden-gunicorn-{settings.PORT}.ctl")
workers = settings.WEB_CONCURRENCY
# Threads keep cheap requests (probes, token reads) answered while other threads hash a
# password: bcrypt releases the GIL. HASHING_SLOTS bounds how many hash at once.
threads = settings.WEB_THREADS
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
# Heroku sends SIGKILL 30 s after SIGTERM; in-flight requests get 25 s to finish.
graceful_timeout = 25
keepalive = 5
accesslog = "-" if ACCESS_LOG else None
# The path without its query string (%(U)s, not %(r)s): a query can carry a token
# (?access_token=, /metrics?token=). No Referer: a page on the API's origin could carry a
# mailed link's token in it.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
forwarded_allow_ips = settings.FORWARDED_ALLOW_IPS

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
