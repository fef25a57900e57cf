"""The OpenAPI document: what it says about itself, errors as problem+json with examples,
and the security schemes and requirements."""

from __future__ import annotations

import http
from collections.abc import Iterable
from typing import Any

import flask_smorest
from flask import Flask
from flask_smorest.utils import prepare_response

from project.core.errors import AppError
from project.schemas.fields import Cursor
from project.schemas.problems import ProblemSchema

DESCRIPTION = """\
Accounts, login sessions and their audit trail.

**Getting a token.** Register with `POST /api/v1/auth/register` (and confirm the mailed link
with `POST /api/v1/auth/verify-email`), then log in with `POST /api/v1/auth/login`. The answer
holds an `access_token` and a `refresh_token`.

**Using it.** Send the access token as `Authorization: Bearer <access_token>`. When it expires
(401 `token_expired`), post the refresh token the same way to `POST /api/v1/auth/refresh` for
a new pair; each refresh token works once.

**Cookie mode** (browser frontends): `POST /api/v1/auth/login?mode=cookie` sets HttpOnly
cookies instead and answers with CSRF values. Requests then carry the cookies; unsafe methods
(POST, PATCH, DELETE) also send the `csrf_token` as `X-CSRF-TOKEN` (the `refresh_csrf_token`
when refreshing).

Every error is an RFC 9457 `application/problem+json` document with a stable `code`.
"""
INFO: dict[str, Any] = {
    "description": DESCRIPTION,
    # Warden grants no license ("UNLICENSED" in package.json). SPDX has no identifier for
    # "all rights reserved"; a LicenseRef- one is how an SPDX expression names such terms.
    "license": {"name": "Proprietary: all rights reserved", "identifier": "LicenseRef-Proprietary"},
    "contact": {"name": "The operators of this Warden deployment"},
}
# Relative to where the document is served: right for every deployment, and what Swagger UI's
# "Try it out" calls. Every path in the document is absolute from the host's root.
SERVERS = [{"url": "/", "description": "The host serving this document"}]

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

# The attribute the auth decorators set on a view: which token it needs ("access", "refresh").
CREDENTIAL = "openapi_credential"
COOKIES = {"access": "cookieAuth", "refresh": "refreshCookie"}


def security_requirement(credential: str | None, *, safe: bool) -> list[dict[str, list[str]]]:
    """The operation's alternatives: a Bearer token, or the cookie (with the CSRF header on
    unsafe methods, the only ones flask-jwt-extended checks it on); none for public ones."""
    if credential is None:
        return []
    cookie: dict[str, list[str]] = {COOKIES[credential]: []}
    if not safe:
        cookie["csrfHeader"] = []
    return [{"bearerAuth": []}, cookie]


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


def register_api(
    api: flask_smorest.Api, app: Flask, *, tagged: Iterable[flask_smorest.Blueprint]
) -> None:
    """Bind ``api`` to ``app``, with problem+json error responses and the security schemes.

    ``tagged`` are the blueprints whose operations the document groups under a tag each.
    """
    # flask-smorest documents its default error responses with ERROR_SCHEMA as it binds.
    api.ERROR_SCHEMA = ProblemSchema
    # Given as an option, "tags" replaces the list flask-smorest collects, which would also
    # name the v1 blueprint that only nests the others and holds no operation of its own.
    tags = [{"name": blueprint.name, "description": blueprint.description} for blueprint in tagged]
    api.init_app(app, spec_kwargs={"info": INFO, "servers": SERVERS, "tags": tags})
    api.register_field(Cursor, "string", None)
    # flask-smorest registers the schema of its pagination header whatever the API uses;
    # Warden pages with cursors in the body, so it would be a component nothing refers to.
    api.spec.components.schemas.pop("PaginationMetadata", None)
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
