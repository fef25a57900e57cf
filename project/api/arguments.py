"""Request parsing: strict webargs parser and the project's Blueprint class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import flask
import flask_smorest
import marshmallow as ma
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from project.core import errors


def _merge_locations(messages: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for by_field in messages.values():
        if isinstance(by_field, Mapping):
            merged.update(by_field)
        else:
            merged.setdefault("_schema", []).extend(by_field)
    return merged


class StrictParser(FlaskParser):
    """Reject unknown fields everywhere, and speak the problem+json error shape."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "json": ma.RAISE,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            if req.content_length or req.get_data(cache=True):
                raise errors.UnsupportedMediaType("Send the body as application/json.")
            return missing
        return super()._raw_load_json(req)

    def _handle_invalid_json_error(
        self, error: Exception, req: flask.Request, *args: Any, **kwargs: Any
    ) -> NoReturn:
        raise errors.InvalidJson("The request body is not valid JSON.")

    def handle_error(
        self,
        error: ma.ValidationError,
        req: flask.Request,
        schema: ma.Schema,
        *,
        error_status_code: int | None,
        error_headers: Mapping[str, str] | None,
    ) -> NoReturn:
        messages = error.messages if isinstance(error.messages, Mapping) else {}
        raise errors.ValidationFailed(
            "The input is invalid; see errors.", errors=_merge_locations(messages)
        )


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest Blueprint with the strict parser."""

    ARGUMENTS_PARSER = StrictParser()
