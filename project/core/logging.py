"""Structured logging: one JSON object per line, with the request's id and user."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from project.compat import skip_caller_lookup
from project.core import context

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# RQ's worker logs a failed job with its arguments as extras: a mail job's hold the whole
# message, its link and one-time token included. The job's name and id still appear.
_WITHHELD = {"arguments", "kwargs"}
_HANDLER_NAME = "warden"
_SKIPPED = frozenset(_STANDARD_ATTRS | _WITHHELD)
# One encoder for every line: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller added to the record, without the withheld ones and Nones."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _SKIPPED and value is not None
    }


class ContextFilter(logging.Filter):
    """Stamp each record with the current request id and user id."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = context.current()
        record.request_id = current.request_id
        record.user_id = current.user_id
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; JSON escaping keeps newlines from forging lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class ConsoleFormatter(logging.Formatter):
    """Readable lines for development; values are repr()'d so newlines stay escaped."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={value!r}" for key, value in _extras(record).items())
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()!r} {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(*, level: str, fmt: str = "json") -> None:
    """Install one stderr handler on the root logger (replacing an earlier one of ours)."""
    # No line shows the caller's file, thread or process name: don't collect them per
    # record (the logging HOWTO's "Optimization" section; every request logs a line).
    skip_caller_lookup()
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(ConsoleFormatter() if fmt == "console" else JsonFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
