"""Who and where the current request comes from, for logs and the audit trail.

The API layer binds these values; services and logging read them without importing Flask.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple


class RequestContext(NamedTuple):
    """Facts about the request being served (all None outside a request).

    A named tuple: every request makes one and binds its user into a copy, and a frozen
    dataclass costs several times as much to build.
    """

    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    user_id: str | None = None


_OUTSIDE = RequestContext()
_current: ContextVar[RequestContext] = ContextVar("request_context", default=_OUTSIDE)


def current() -> RequestContext:
    """The context of the request being served."""
    return _current.get()


def bind(**fields: str | None) -> None:
    """Set some fields of the current context."""
    _current.set(_current.get()._replace(**fields))


def start(**fields: str | None) -> None:
    """Begin a request's context with these fields."""
    _current.set(RequestContext(**fields))


def clear() -> None:
    """Forget the context at the end of a request."""
    _current.set(_OUTSIDE)
