"""Flask's JSON, written by orjson."""

from __future__ import annotations

from typing import Any, cast

import orjson
from flask import Response, current_app
from flask.json.provider import DefaultJSONProvider

# Dates and dataclasses go to Flask's default() as before (an HTTP date, asdict); keys that
# are not strings are written as strings, as the json module writes them.
_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
)


class OrjsonProvider(DefaultJSONProvider):
    """Flask's default provider, writing compact JSON with orjson.

    json.dumps with options builds an encoder for each call, and every answer is JSON:
    orjson writes a warm read's answer in a small part of that time. The output is the
    same JSON, in UTF-8 instead of ASCII escapes. What orjson refuses (an integer past 64 bits,
    a lone surrogate) and any call with options of its own is written by the json module.
    Reading stays with the json module.
    """

    def _options(self, extra: int = 0) -> int:
        return _OPTIONS | extra | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize ``obj`` as a JSON string."""
        if kwargs:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=self._options()).decode()
        except TypeError:
            return super().dumps(obj)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """A compact application/json response of the arguments, as ``jsonify`` makes."""
        if self.compact is False or (self.compact is None and self._app.debug):
            return cast(Response, super().response(*args, **kwargs))  # indented, for people
        if args and kwargs:
            raise TypeError("app.json.response() takes either args or kwargs, not both")
        obj = args[0] if len(args) == 1 else (args or kwargs or None)
        try:
            body = orjson.dumps(
                obj, default=self.default, option=self._options(orjson.OPT_APPEND_NEWLINE)
            )
        except TypeError:
            return cast(Response, super().response(*args, **kwargs))
        return current_app.response_class(body, mimetype=self.mimetype)
