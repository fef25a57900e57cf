"""The OpenAPI document: complete, valid, checked in, and in step with the routes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from project.api.errors import errors_markdown

ROOT = Path(__file__).resolve().parent.parent
DOC_ROUTES = {
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/redoc",
    "/api/v1/docs/assets/<bundle>/<path:filename>",
}
METHODS = {"get", "post", "put", "patch", "delete"}


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
        assert any(code.startswith("2") for code in responses), where
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
    me = document["paths"]["/api/v1/users/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}, {"cookieAuth": [], "csrfHeader": []}]
    assert "security" not in document["paths"]["/api/v1/auth/login"]["post"]


def test_the_error_catalogue_is_current() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == errors_markdown(), "run: make docs"
    assert "| `weak_password` | 422 |" in errors_markdown()


def test_swagger_ui_and_redoc(client: FlaskClient) -> None:
    swagger = client.get("/api/v1/docs")
    assert swagger.status_code == 200 and b"persistAuthorization" in swagger.data
    redoc = client.get("/api/v1/redoc")
    assert redoc.status_code == 200 and b"redoc" in redoc.data.lower()
