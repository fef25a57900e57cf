"""The OpenAPI document: complete, valid, checked in, and in step with the routes."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from config import load_settings
from project.api.errors import errors_markdown
from project.extensions import db
from project.models import User
from tests.conftest import assert_problem, bearer, build_app, register_and_login

ROOT = Path(__file__).resolve().parent.parent
DOC_ROUTES = {
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/redoc",
    "/api/v1/docs/assets/<bundle>/<path:filename>",
}
METHODS = {"get", "post", "put", "patch", "delete"}
TAG_ORDER = [
    "health",
    "wellknown",
    "auth",
    "factors",
    "passkeys",
    "users",
    "admin",
    "identities",
    "email_signin",
]


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    """This module's app: every optional endpoint mounted, as docs/openapi.json describes."""
    values = dotenv_values(ROOT / "tools" / "openapi.env")
    environ = {**os.environ, **{k: v for k, v in values.items() if v}, "APP_ENV": "testing"}
    application = build_app(load_settings(environ))
    with application.app_context():
        db.create_all()  # the suite's tables, which other modules' app shares on PostgreSQL
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    """The document the app serves."""
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the document."""
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_checked_in_document_is_current(document: dict[str, Any]) -> None:
    checked_in = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert checked_in == document, "run: make docs (flask openapi write docs/openapi.json)"


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_routes_and_document_match(app: Flask, document: dict[str, Any]) -> None:
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule in DOC_ROUTES:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routed |= {
            (path, method.lower()) for method in rule.methods or () if method.lower() in METHODS
        }
    documented = {
        (path, method) for path, method, _ in operations(document) if path.startswith("/api/v1/")
    }
    assert routed == documented


def test_every_operation_is_described(document: dict[str, Any]) -> None:
    ids = []
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert operation.get("description"), where
        assert operation.get("tags"), where
        ids.append(operation["operationId"])
        responses = operation["responses"]
        # A success, or for the browser's legs of a provider sign-in a redirect.
        assert any(code[0] in "23" for code in responses), where
        assert "default" in responses, where
        if "requestBody" in operation:
            body = operation["requestBody"]["content"]["application/json"]
            assert "example" in body, where
            assert {"400", "413", "415", "422"} <= set(responses), where
        if path.startswith("/api/v1/"):
            assert "429" in responses, where
        if "{" in path:
            # An id that names nothing is answered 404 not_found.
            assert "404" in responses, where
    assert len(ids) == len(set(ids))
    assert {"login", "refresh", "listUsers", "auditEvents"} <= set(ids)


def test_errors_are_problem_documents_with_examples(document: dict[str, Any]) -> None:
    for name, response in document["components"]["responses"].items():
        content = response.get("content", {})
        if name == "DEFAULT_ERROR" or "application/problem+json" in content:
            problem = content["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert problem["example"]["code"], name


def test_security_schemes_and_requirements(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"] == {
        **schemes["cookieAuth"],
        "type": "apiKey",
        "in": "cookie",
        "name": "access_token_cookie",
    }
    assert schemes["csrfHeader"]["name"] == "X-CSRF-TOKEN"
    paths = document["paths"]
    bearer_or = [{"bearerAuth": []}]
    # CSRF is checked on unsafe methods only: a cookie alone reads, the header must come along
    # to change anything.
    assert paths["/api/v1/users/me"]["get"]["security"] == [*bearer_or, {"cookieAuth": []}]
    assert paths["/api/v1/users"]["get"]["security"] == [*bearer_or, {"cookieAuth": []}]
    unsafe = [*bearer_or, {"cookieAuth": [], "csrfHeader": []}]
    assert paths["/api/v1/users/me"]["patch"]["security"] == unsafe
    assert paths["/api/v1/auth/logout"]["post"]["security"] == unsafe
    refresh = [*bearer_or, {"refreshCookie": [], "csrfHeader": []}]
    assert paths["/api/v1/auth/refresh"]["post"]["security"] == refresh
    for path, method, operation in operations(document):
        assert "security" in operation, f"{method.upper()} {path}"
    for path in (
        "/api/v1/auth/login",
        "/api/v1/auth/csrf",
        "/health/ready",
        "/.well-known/jwks.json",
    ):
        assert all(op["security"] == [] for op in paths[path].values()), path


def test_the_document_describes_itself(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "/", "description": "The host serving this document"}]
    assert document["info"]["license"]["identifier"]
    assert "Authorization: Bearer" in document["info"]["description"]
    tagged = {tag for _, _, operation in operations(document) for tag in operation["tags"]}
    assert [tag["name"] for tag in document["tags"]] == sorted(tagged, key=TAG_ORDER.index)


def test_the_linters_rules_hold(document: dict[str, Any]) -> None:
    """What redocly and spectral check, for a run without node (make lint runs both)."""
    text = json.dumps(document)
    unused = [
        name
        for kind, components in document["components"].items()
        for name in components
        if kind != "securitySchemes" and f'"#/components/{kind}/{name}"' not in text
    ]
    assert unused == []
    required = {
        scheme
        for _, _, operation in operations(document)
        for alternative in operation["security"]
        for scheme in alternative
    }
    assert required == set(document["components"]["securitySchemes"])
    for path, method, operation in operations(document):
        assert any(code.startswith("4") for code in operation["responses"]), (method, path)


def reachable(document: dict[str, Any], roots: list[Any]) -> set[str]:
    """Names of the schema components ``roots`` refer to, directly or through others."""
    found: set[str] = set()
    pending = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] not in found:
                found.add(name := ref.rsplit("/", 1)[1])
                pending.append(document["components"]["schemas"][name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


# Problem fields present only on some errors.
OPTIONAL_ANSWER_FIELDS = {
    ("Problem", "errors"),
    ("Problem", "retry_after"),
    ("Problem", "checks"),
    # Login hands out a device token; refresh, sharing the shape, does not.
    ("BearerTokens", "device_token"),
}


def test_answers_require_every_field_the_server_always_sends(document: dict[str, Any]) -> None:
    """Generated clients type a field as present only when the document requires it."""
    ops = operations(document)
    answers = reachable(document, [op["responses"] for _, _, op in ops])
    answers |= reachable(document, [document["components"]["responses"]])
    inputs = reachable(document, [op.get("requestBody", {}) for _, _, op in ops])
    assert {"User", "Session", "BearerTokens", "CookieTokens", "UserPage", "EventPage"} <= answers
    schemas = document["components"]["schemas"]
    for name in answers - inputs:
        optional = set(schemas[name]["properties"]) - set(schemas[name].get("required", ()))
        assert {(name, field) for field in optional} <= OPTIONAL_ANSWER_FIELDS, name
    assert schemas["User"]["properties"]["full_name"]["type"] == ["string", "null"]


def test_cursors_are_strings(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for page in ("UserPage", "EventPage", "AdminEventPage"):
        assert schemas[page]["properties"]["next_cursor"]["type"] == ["string", "null"], page
    cursors = [
        parameter["schema"]
        for _, _, operation in operations(document)
        for parameter in operation.get("parameters", ())
        if parameter["name"] == "cursor"
    ]
    assert len(cursors) == 3
    assert all(schema["type"] == "string" for schema in cursors)


def test_login_answers_one_of_two_token_shapes(document: dict[str, Any]) -> None:
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        ok = document["paths"][path]["post"]["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        assert schema["discriminator"]["propertyName"] == "token_type"
        assert sorted(schema["discriminator"]["mapping"].values()) == sorted(
            choice["$ref"] for choice in schema["oneOf"]
        )


def test_no_content_answers_have_no_content(document: dict[str, Any]) -> None:
    answers = [op["responses"].get("204") for _, _, op in operations(document)]
    assert [answer for answer in answers if answer] == [{"description": "No Content"}] * 13


def fill(path: str) -> str:
    return re.sub(r"\{\w+\}", str(uuid.uuid4()), path)


def test_every_operation_that_refuses_unknown_fields_documents_422(
    client: FlaskClient, admin_headers: dict[str, str], document: dict[str, Any]
) -> None:
    refusing = []
    for path, method, operation in operations(document):
        for where in ({"query_string": {"unknown_field": "1"}}, {"json": {"unknown_field": 1}}):
            response = client.open(fill(path), method=method, headers=admin_headers, **where)
            if response.status_code == 422:
                refusing.append((method, path))
                assert "422" in operation["responses"], f"{method.upper()} {path}"
    # Every operation under /api/v1 but refresh, which an access token does not reach.
    assert set(refusing) == {
        (method, path)
        for path, method, _ in operations(document)
        if path.startswith("/api/v1/") and path != "/api/v1/auth/refresh"
    }


def test_the_error_catalogue_is_current() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == errors_markdown(), "run: make docs"
    assert "| `weak_password` | 422 |" in errors_markdown()


def test_swagger_ui_and_redoc(client: FlaskClient) -> None:
    swagger = client.get("/api/v1/docs")
    assert swagger.status_code == 200 and b"persistAuthorization" in swagger.data
    redoc = client.get("/api/v1/redoc")
    assert redoc.status_code == 200 and b"redoc" in redoc.data.lower()


def test_no_content_answers_carry_no_content_type(
    client: FlaskClient, admin_headers: dict[str, str], make_user: Callable[..., User]
) -> None:
    doomed = make_user()
    deleted = client.delete(f"/api/v1/users/{doomed.id}", headers=admin_headers)
    logout = client.post("/api/v1/auth/logout", headers=admin_headers)
    for response in (deleted, logout):
        assert response.status_code == 204
        assert "Content-Type" not in response.headers
        assert response.data == b""


@pytest.mark.parametrize(
    ("body", "status"), [({"a": 1}, 422), (None, 200), ({}, 200), ([], 422), ({"scope": 1}, 422)]
)
def test_an_operation_without_a_body_refuses_fields_sent_in_one(
    client: FlaskClient, body: Any, status: int
) -> None:
    tokens = register_and_login(client, "refresher@example.com")
    response = client.post(
        "/api/v1/auth/refresh", json=body, headers=bearer(tokens["refresh_token"])
    )
    assert response.status_code == status
    if isinstance(body, dict) and body:
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"] == {name: ["Unknown field."] for name in body}


def test_an_anonymous_request_is_refused_before_its_input(client: FlaskClient) -> None:
    response = client.get("/api/v1/users/me?x=1", json={"a": 1})
    assert_problem(response, 401, "authorization_required")
