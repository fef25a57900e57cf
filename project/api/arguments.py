"""Request parsing: strict webargs parser and the project's Blueprint class."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import wraps
from typing import Any, NoReturn

import flask
import flask_smorest
import marshmallow as ma
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from project.core import errors
from project.schemas.fields import storable_text

UNSTORABLE = "Must not contain the NUL character or unpaired surrogates."


def invalid(messages: Mapping[str, Any]) -> errors.AppError:
    """The 422 validation_error naming, per field, what is wrong with it."""
    return errors.ValidationFailed("The input is invalid; see errors.", errors=dict(messages))


def _merge_locations(messages: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for by_field in messages.values():
        if isinstance(by_field, Mapping):
            merged.update(by_field)
        else:
            merged.setdefault("_schema", []).extend(by_field)
    return merged


def _unstorable_fields(value: Any, field: str | None = None) -> Iterator[str]:
    """Top-level fields holding, anywhere inside, text the database cannot store."""
    if isinstance(value, str):
        if field is not None and not storable_text(value):
            yield field
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _unstorable_fields(item, str(key) if field is None else field)
    elif isinstance(value, list):
        for item in value:
            yield from _unstorable_fields(item, field)


def _refuse_repeated(schema: ma.Schema, req: flask.Request) -> None:
    """A parameter given twice must be a list: taking the first value (webargs' way) would
    differ from a proxy or filter that reads the last."""
    by_key = {field.data_key or name: field for name, field in schema.load_fields.items()}
    repeated = sorted(
        key
        for key, values in req.args.lists()
        if len(values) > 1 and not isinstance(by_key.get(key), ma.fields.List)
    )
    if repeated:
        raise invalid({key: ["Give this parameter once."] for key in repeated})


def refuse_query(view: Any) -> Any:
    """Wrap a view that takes no query parameters so that any given is refused (422)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if flask.request.args:
            raise invalid({key: ["Unknown field."] for key in flask.request.args})
        return view(*args, **kwargs)

    return wrapper


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
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise  # webargs answers it (an empty body is a missing one)
        except (RecursionError, ValueError) as exc:
            # Valid JSON that Python's parser refuses: nesting past the recursion limit, or
            # an integer past the digit limit of int().
            self._handle_invalid_json_error(exc, req)

    def _load_location_data(self, *, schema: ma.Schema, req: flask.Request, location: str) -> Any:
        if location in ("query", "querystring"):
            _refuse_repeated(schema, req)
        data = super()._load_location_data(schema=schema, req=req, location=location)
        # PostgreSQL text cannot hold NUL, and no driver can encode a lone surrogate (JSON
        # may escape one): refuse them here rather than fail in the database or bcrypt.
        raw = req.args.to_dict(flat=False) if location in ("query", "querystring") else data
        if isinstance(raw, Mapping) and (fields := sorted(set(_unstorable_fields(raw)))):
            raise invalid({name: [UNSTORABLE] for name in fields})
        return data

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
        raise invalid(_merge_locations(messages))


def refuse_body() -> None:
    """Refuse a body where the options go in the query, rather than ignore what it asks."""
    if flask.request.get_data(cache=True).strip() not in (b"", b"{}"):
        raise invalid({"_schema": ["This endpoint takes no body: pass its options in the query."]})


# Every API operation may be rate limited; every JSON body may be malformed, too large or
# not JSON at all. Documented once here rather than on each view.
COMMON_RESPONSES = {429: "TOO_MANY_REQUESTS"}
BODY_RESPONSES = {
    400: "BAD_REQUEST",
    413: "REQUEST_ENTITY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest Blueprint with the strict parser and complete operation docs.

    Each operation gets a stable operationId (the view's name in camelCase), its
    blueprint's tag, and the error responses every operation shares.
    """

    ARGUMENTS_PARSER = StrictParser()

    def __init__(
        self, *args: Any, rate_limited: bool = True, strict_query: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limited = rate_limited
        # Probes and discovery documents tolerate cache-busting parameters; the API does not.
        self.strict_query = strict_query

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's ``arguments``, with a schema class made into one instance here.

        Given a class, webargs builds a new instance, deep-copying its fields, on every
        request; schemas keep no state between loads, so one instance serves them all.
        """
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)

    def route(self, rule: str, *, parameters: Any = None, tags: Any = None, **options: Any) -> Any:
        """Register a view, completing its OpenAPI description."""
        register = super().route(rule, parameters=parameters, tags=tags or [self.name], **options)

        def decorator(func: Any) -> Any:
            apidoc = func.__dict__.setdefault("_apidoc", {})
            apidoc.setdefault("manual_doc", {}).setdefault("operationId", _camel(func.__name__))
            responses = apidoc.setdefault("response", {}).setdefault("responses", {})
            shared = dict(COMMON_RESPONSES) if self.rate_limited else {}
            locations = [p["in"] for p in apidoc.get("arguments", {}).get("parameters", [])]
            if "json" in locations:
                shared |= BODY_RESPONSES
            for status, name in shared.items():
                responses.setdefault(status, []).append(name)
            if self.strict_query and "query" not in locations:
                func = refuse_query(func)
            return register(func)

        return decorator
