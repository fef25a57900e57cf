"""Request parsing: strict webargs parser and the project's Blueprint class."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import wraps
from typing import Any, NoReturn

import flask
import flask_smorest
import marshmallow as ma
from webargs.core import missing, parse_json
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

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        """The JSON body, ``missing`` when there is none; anything else is refused."""
        body = req.get_data(cache=True)
        if not is_json_request(req):
            if req.content_length or body:
                raise errors.UnsupportedMediaType("Send the body as application/json.")
            return missing
        try:
            return parse_json(body)
        except json.JSONDecodeError as exc:
            if exc.doc == "":
                return missing  # an empty body is a missing one
            raise errors.InvalidJson("The request body is not valid JSON.") from exc
        except (RecursionError, ValueError) as exc:
            # Not UTF-8, or valid JSON that Python's parser refuses: nesting past the
            # recursion limit, or an integer past the digit limit of int().
            raise errors.InvalidJson("The request body is not valid JSON.") from exc

    def pre_load(
        self,
        location_data: Mapping[str, Any],
        *,
        schema: ma.Schema,
        req: flask.Request,
        location: str,
    ) -> Mapping[str, Any]:
        """Refuse repeated query parameters, and text the database cannot store."""
        raw: Any = location_data
        if location in ("query", "querystring"):
            _refuse_repeated(schema, req)
            raw = req.args.to_dict(flat=False)
        # PostgreSQL text cannot hold NUL, and no driver can encode a lone surrogate (JSON
        # may escape one): refuse them here rather than fail in the database or bcrypt.
        if isinstance(raw, Mapping) and (fields := sorted(set(_unstorable_fields(raw)))):
            raise invalid({name: [UNSTORABLE] for name in fields})
        return location_data

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
# The request locations a view's ``arguments`` read, for ``route`` to complete its doc.
ARGUMENT_LOCATIONS = "argument_locations"
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
        document = super().arguments(schema, *args, **kwargs)
        location = kwargs.get("location", "json")  # flask-smorest's default

        def decorator(func: Any) -> Any:
            view = document(func)
            setattr(view, ARGUMENT_LOCATIONS, (*getattr(view, ARGUMENT_LOCATIONS, ()), location))
            return view

        return decorator

    def route(self, rule: str, *, parameters: Any = None, tags: Any = None, **options: Any) -> Any:
        """Register a view, completing its OpenAPI description."""
        register = super().route(rule, parameters=parameters, tags=tags or [self.name], **options)

        def decorator(func: Any) -> Any:
            shared = dict(COMMON_RESPONSES) if self.rate_limited else {}
            locations = getattr(func, ARGUMENT_LOCATIONS, ())
            if "json" in locations:
                shared |= BODY_RESPONSES
            for status, name in shared.items():
                func = self.alt_response(status, name)(func)
            if self.strict_query and "query" not in locations:
                func = refuse_query(func)
            return register(self.doc(operationId=_camel(func.__name__))(func))

        return decorator
