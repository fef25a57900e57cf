"""Request parsing: strict webargs parser and the project's Blueprint class."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import wraps
from http import HTTPStatus
from typing import Any, NoReturn

import flask
import flask_smorest
import marshmallow as ma
from webargs.core import missing, parse_json
from webargs.flaskparser import FlaskParser, is_json_request

from project.api.openapi import CREDENTIAL, security_requirement
from project.compat import document_operation
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


PARSER = StrictParser()


class NoFieldsSchema(ma.Schema):
    """The input of a location an operation does not read: every field is unknown."""

    class Meta:
        unknown = ma.RAISE


NO_FIELDS = NoFieldsSchema()


def refuse_unread_input() -> None:
    """Refuse query parameters and body fields an operation does not read, rather than
    ignore what they ask (``{"scope": "global"}`` posted to logout must not end one session).

    An empty body, or ``{}``, is no input; a body of another type or invalid JSON is refused
    as on any operation.
    """
    request = flask.request
    environ = request.environ
    view = flask.current_app.view_functions[request.endpoint or ""]
    read = getattr(view, ARGUMENT_LOCATIONS, ())
    if "query" not in read and environ.get("QUERY_STRING") and request.args:
        PARSER.parse(NO_FIELDS, location="query")
    if "json" not in read and has_body(environ) and request.get_data(cache=True):
        PARSER.parse(NO_FIELDS, location="json")


def has_body(environ: Mapping[str, Any]) -> bool:
    """Whether the request may carry a body (a Content-Length or a chunked one)."""
    return environ.get("CONTENT_LENGTH", "") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ


class NoContent(flask.Response):
    """A 204 answer: no body, so no Content-Type either."""

    default_mimetype = None


# Documented once here rather than on each view: every request may carry a body that is
# malformed, too large or encoded (the request hooks read it whatever the operation), every
# API operation may be rate limited, and a strict one refuses fields it does not read.
INPUT_RESPONSES = {
    400: "BAD_REQUEST",
    413: "REQUEST_ENTITY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
RATE_LIMIT_RESPONSES = {429: "TOO_MANY_REQUESTS"}
STRICT_RESPONSES = {422: "UNPROCESSABLE_ENTITY"}
# The request locations a view's ``arguments`` read, for ``route`` to complete its doc.
ARGUMENT_LOCATIONS = "argument_locations"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest Blueprint with the strict parser and complete operation docs.

    Each operation gets a stable operationId (the view's name in camelCase), its
    blueprint's tag, its security requirement, and the error responses it shares.
    """

    ARGUMENTS_PARSER = PARSER

    def __init__(
        self, *args: Any, rate_limited: bool = True, strict: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limited = rate_limited
        # Probes and discovery documents tolerate cache-busting parameters and stray bodies;
        # the API refuses what it does not read.
        self.strict = strict

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

    def response(self, status_code: int, schema: Any = None, **kwargs: Any) -> Any:
        """flask-smorest's ``response``; a strict view first refuses input it does not read
        (after authentication, which wraps this), and a 204 goes out bare."""
        document = super().response(status_code, schema, **kwargs)
        no_content = int(status_code) == HTTPStatus.NO_CONTENT

        def decorator(func: Any) -> Any:
            @wraps(func)
            def view(*args: Any, **kwargs: Any) -> Any:
                if self.strict:
                    refuse_unread_input()
                result = func(*args, **kwargs)
                # flask-smorest would jsonify None: a "null" body werkzeug drops, and a
                # Content-Type that describes nothing.
                return NoContent(status=HTTPStatus.NO_CONTENT) if no_content else result

            return document(view)

        return decorator

    def route(self, rule: str, *, parameters: Any = None, tags: Any = None, **options: Any) -> Any:
        """Register a view, completing its OpenAPI description."""
        register = super().route(rule, parameters=parameters, tags=tags or [self.name], **options)
        safe = set(options.get("methods", ["GET"])) <= SAFE_METHODS

        def decorator(func: Any) -> Any:
            shared = dict(INPUT_RESPONSES)
            if self.rate_limited:
                shared |= RATE_LIMIT_RESPONSES
            if self.strict:
                shared |= STRICT_RESPONSES
            # Documented in place: each alt_response would wrap the view once more.
            document_operation(func, responses=shared)
            security = security_requirement(getattr(func, CREDENTIAL, None), safe=safe)
            return register(self.doc(operationId=_camel(func.__name__), security=security)(func))

        return decorator
