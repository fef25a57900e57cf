"""Structured logging: one JSON object per line, with the request's id and user."""

from __future__ import annotations

import json
import logging
import sys
import time
from itertools import islice
from typing import Any

import orjson

from project.compat import skip_caller_lookup
from project.core import context

_OWN_ATTRS = logging.makeLogRecord({}).__dict__
_STANDARD_ATTRS = set(_OWN_ATTRS) | {"message", "asctime"}
# A record's own attributes come first in its __dict__, set by LogRecord's __init__; a
# caller's extras and the context filter's fields follow. Skipping the first ones spares
# looking up each of them on every line.
_OWN_COUNT = len(_OWN_ATTRS)
# RQ's worker logs a failed job with its arguments as extras: a mail job's hold the whole
# message, its link and one-time token included. The job's name and id still appear.
_WITHHELD = {"arguments", "kwargs"}
_HANDLER_NAME = "warden"
_SKIPPED = frozenset(_STANDARD_ATTRS | _WITHHELD)
# For a line orjson refuses (an integer past 64 bits, a lone surrogate): it is still written.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller added to the record, without the withheld ones and Nones."""
    return {
        key: value
        for key, value in islice(record.__dict__.items(), _OWN_COUNT, None)
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
    """Format a record as one JSON line; JSON escaping keeps newlines from forging lines.

    Every request writes a line: orjson encodes it, and the time's date and second are
    formatted once per second.
    """

    _second: tuple[int, str] = (-1, "")

    def _time(self, record: logging.LogRecord) -> str:
        """The record's UTC time in ISO 8601, to the millisecond."""
        whole = int(record.created)
        second = self._second
        if second[0] != whole:
            second = self._second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
        return f"{second[1]}.{int(record.msecs):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:
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
