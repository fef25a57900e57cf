"""The OpenAPI document: errors as problem+json with examples, and the security schemes."""

from __future__ import annotations

import http
from typing import Any

import flask_smorest
from flask import Flask
from flask_smorest.utils import prepare_response

from project.core.errors import AppError
from project.schemas.problems import ProblemSchema

PROBLEM_CONTENT_TYPE = "application/problem+json"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from /auth/login (refresh token for /auth/refresh).",
    },
    "cookieAuth": {
        "type": "apiKey",
        "in": "cookie",
        "name": "access_token_cookie",
        "description": "Cookie mode (?mode=cookie at login): HttpOnly access cookie.",
    },
    "refreshCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "refresh_token_cookie",
        "description": "Cookie mode: HttpOnly refresh cookie, sent to /auth/refresh only.",
    },
    "csrfHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-TOKEN",
        "description": "Cookie mode: the csrf_token from login, required on unsafe methods.",
    },
}


def problem_example(status: int) -> dict[str, Any]:
    """A realistic problem document for ``status``, from the error registry."""
    error = next((cls for cls in AppError.registry if cls.status == status), None)
    code = error.code if error else "http_error"
    title = error.title if error else http.HTTPStatus(status).phrase
    example: dict[str, Any] = {
        "type": f"urn:warden:problem:{code}",
        "title": title,
        "status": status,
        "detail": error.description if error else title,
        "code": code,
        "request_id": "8f14e45fceea167a5a36dedd4bea2543",
    }
    if status == 422:
        example["errors"] = {"email": ["Not a valid email address."]}
    return example


def register_api(api: flask_smorest.Api, app: Flask) -> None:
    """Bind ``api`` to ``app``, with problem+json error responses and the security schemes."""
    # flask-smorest documents its default error responses with ERROR_SCHEMA as it binds.
    api.ERROR_SCHEMA = ProblemSchema
    api.init_app(app)
    # Registering a lazy response again replaces flask-smorest's default of that name.
    for status in http.HTTPStatus:
        response: dict[str, Any] = {"description": status.phrase}
        if status >= 400:
            response |= {"schema": ProblemSchema, "example": problem_example(status)}
            prepare_response(response, api.spec, PROBLEM_CONTENT_TYPE)
        else:
            prepare_response(response, api.spec, api.DEFAULT_RESPONSE_CONTENT_TYPE)
        api.spec.components.response(status.name, response, lazy=True)
    default = {
        "description": "Any other error, in the same problem+json shape",
        "schema": ProblemSchema,
        "example": problem_example(500),
    }
    prepare_response(default, api.spec, PROBLEM_CONTENT_TYPE)
    api.spec.components.response(api.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
