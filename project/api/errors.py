"""Turn every error into one RFC 9457 application/problem+json response."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify
from flask_jwt_extended.exceptions import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from project.core import errors, metrics

logger = logging.getLogger(__name__)

PROBLEM_TYPE_PREFIX = "urn:warden:problem:"
PROBLEM_MIMETYPE = "application/problem+json"

HTTP_ERRORS: dict[int, type[errors.AppError]] = {
    400: errors.BadRequest,
    401: errors.AuthorizationRequired,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    422: errors.ValidationFailed,
    429: errors.RateLimited,
    503: errors.ServiceUnavailable,
}


def problem_response(
    error: errors.AppError, headers: dict[str, str] | None = None, *, status: int | None = None
) -> Response:
    """Render ``error`` as a problem+json response (``status`` overrides the class's)."""
    status = status or error.status
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + error.code,
        "title": error.title,
        "status": status,
        "detail": error.detail,
        "code": error.code,
        "request_id": g.get("request_id"),
        **error.extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_app_error(error: errors.AppError) -> Response:
    """Render a domain error."""
    return problem_response(error, error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Render a routing or protocol error from Werkzeug in the problem shape."""
    code = error.code or 500
    if code >= 500 and code not in HTTP_ERRORS:
        return handle_unexpected(error)
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    if code not in HTTP_ERRORS:
        return problem_response(errors.HttpError(error.description), headers, status=code)
    error_class = HTTP_ERRORS[code]
    if code == 429:
        metrics.RATE_LIMITED.inc()
    detail = error.description if error_class is not errors.BadRequest else None
    return problem_response(error_class(detail), headers)


def handle_csrf_error(error: CSRFError) -> Response:
    """A cookie-authenticated request without the matching CSRF header."""
    return problem_response(errors.CsrfFailed(str(error)))


def handle_database_unavailable(error: OperationalError) -> Response:
    """Answer 503 when the database cannot be reached, instead of a bare 500."""
    logger.error("database unavailable: %s", type(error.orig).__name__)
    return problem_response(errors.ServiceUnavailable("The database is unavailable."))


def handle_unexpected(error: Exception) -> Response:
    """Log the traceback and answer 500 without revealing anything internal."""
    logger.exception("unhandled error", exc_info=error)
    return problem_response(errors.AppError("An unexpected error occurred."))


def register_error_handlers(app: Flask) -> None:
    """Register the handlers; called after flask-smorest so these replace its own."""
    app.register_error_handler(errors.AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
