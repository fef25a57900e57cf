"""Every error, from routing to crashes, is one problem+json shape."""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import uuid
from typing import Any

import marshmallow
import pytest
from flask import Flask, abort
from flask.testing import FlaskClient

from project import create_app
from tests.conftest import PASSWORD, assert_problem, bearer, make_settings


def test_unknown_route(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_lists_the_allowed_ones(client: FlaskClient) -> None:
    response = client.put("/api/v1/auth/login", json={})
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/login", data='{"email": ', content_type="application/json")
    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000,  # Python's parser gives up with RecursionError, not a JSON error
        '{"email": "a@example.com", "password": ' + "1" * 5000 + "}",  # int digit limit
        '{"email": "a@example.com", "password": 1e999999}',
    ],
    ids=["nested", "long-integer", "huge-float"],
)
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/password/forgot"])
def test_json_python_cannot_parse_is_invalid_json(
    client: FlaskClient, path: str, body: str
) -> None:
    response = client.post(path, data=body, content_type="application/json")
    if "1e999999" in body:  # parses (as infinity): the schema refuses it
        assert_problem(response, 422, "validation_error")
    else:
        assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object(client: FlaskClient, body: str) -> None:
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert_problem(response, 422, "validation_error")


def test_wrong_content_type(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/login",
        data="email=a@example.com",
        content_type="application/x-www-form-urlencoded",
    )
    assert_problem(response, 415, "unsupported_media_type")


def test_a_chunked_body_of_another_type_is_refused_too(client: FlaskClient) -> None:
    """No Content-Length to go by: the body itself is read to see whether there is one."""
    response = client.post(
        "/api/v1/auth/login",
        input_stream=io.BytesIO(b"email=a@example.com"),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.request.environ["CONTENT_LENGTH"] == ""
    assert_problem(response, 415, "unsupported_media_type")


def test_a_chunked_body_over_64_kib_is_refused_as_too_large(client: FlaskClient) -> None:
    """Werkzeug stops such a stream at the limit without a word: the rest must not be lost."""
    payload = json.dumps({"full_name": "x" * (70 * 1024)}).encode()
    response = client.post(
        "/api/v1/auth/login",
        input_stream=io.BytesIO(payload),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert_problem(response, 413, "payload_too_large")


def test_a_chunked_body_within_the_limit_is_read_whole(client: FlaskClient) -> None:
    payload = json.dumps({"email": "nobody@example.com", "password": "x" * 60_000}).encode()
    response = client.post(
        "/api/v1/auth/login",
        input_stream=io.BytesIO(payload),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    # Parsed in full: the password's length is judged, not the JSON.
    assert response.status_code != 400, response.json
    assert response.status_code in (401, 422), response.json


def test_body_over_64_kib(client: FlaskClient) -> None:
    payload = json.dumps({"email": "a@example.com", "password": "x" * (65 * 1024)})
    response = client.post("/api/v1/auth/login", data=payload, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


def test_validation_errors_name_each_field(client: FlaskClient) -> None:
    body = assert_problem(
        client.post("/api/v1/auth/register", json={"email": "x", "extra": 1}),
        422,
        "validation_error",
    )
    assert body["errors"]["email"] == ["An email address must have an @-sign."]
    assert body["errors"]["password"] == ["Missing data for required field."]
    assert body["errors"]["extra"] == ["Unknown field."]


def test_unexpected_errors_reveal_nothing(caplog: pytest.LogCaptureFixture) -> None:
    app: Flask = create_app(make_settings())

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert body["detail"] == "An unexpected error occurred."
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "secret internal detail" in str(logged[0].exc_info[1])


@pytest.mark.parametrize(
    ("supplied", "echoed"),
    [("abc-123_DEF.4:5", True), ("bad id with spaces", False), ("x" * 129, False), ("", False)],
)
def test_request_id_is_echoed_when_well_formed(
    client: FlaskClient, supplied: str, echoed: bool
) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": supplied})
    returned = response.headers["X-Request-ID"]
    assert (returned == supplied) is echoed
    assert len(returned) >= 8


def test_a_request_id_with_a_trailing_newline_is_replaced(client: FlaskClient) -> None:
    """A server may pass it on; ``$`` would match before the newline, the header would not."""
    response = client.get("/health/live", environ_overrides={"HTTP_X_REQUEST_ID": "abc\n"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] != "abc\n"


def test_security_headers(client: FlaskClient) -> None:
    assert client.get("/health/live").headers["X-Content-Type-Options"] == "nosniff"


def test_authentication_is_checked_before_the_body(client: FlaskClient) -> None:
    response = client.patch("/api/v1/users/me", json={"role": "admin", "junk": True})
    assert_problem(response, 401, "authorization_required")


@pytest.mark.parametrize("status", [406, 410, 428])
def test_other_http_errors_keep_their_status(status: int) -> None:
    app: Flask = create_app(make_settings())

    @app.get("/teapot")
    def teapot() -> str:
        abort(status)

    body = assert_problem(app.test_client().get("/teapot"), status, "http_error")
    assert body["status"] == status


def test_a_werkzeug_503_stays_503() -> None:
    app: Flask = create_app(make_settings())

    @app.get("/maintenance")
    def maintenance() -> str:
        abort(503)

    assert_problem(app.test_client().get("/maintenance"), 503, "service_unavailable")


def test_nul_characters_are_refused_before_the_database(
    client: FlaskClient, admin_headers: dict[str, str], make_user: Any
) -> None:
    """PostgreSQL text cannot hold NUL: every input location answers 422, never 500."""
    body = client.patch("/api/v1/users/me", json={"full_name": "Ann\x00"}, headers=admin_headers)
    assert assert_problem(body, 422, "validation_error")["errors"] == {
        "full_name": ["Must not contain the NUL character or unpaired surrogates."]
    }
    query = client.get("/api/v1/users", query_string={"email": "a\x00"}, headers=admin_headers)
    assert "email" in assert_problem(query, 422, "validation_error")["errors"]
    cursor = base64.urlsafe_b64encode(json.dumps(["email", "a\x00"]).encode()).decode()
    listed = client.get(
        "/api/v1/users", query_string={"email": "a", "cursor": cursor}, headers=admin_headers
    )
    assert "cursor" in assert_problem(listed, 422, "validation_error")["errors"]
    # A User-Agent is recorded with sessions and audit events: NUL is dropped from it.
    user = make_user()
    login = client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"User-Agent": "probe\x00/1.0"},
    )
    assert login.status_code == 200, login.json
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(login.json["access_token"]))
    assert [s["user_agent"] for s in sessions.json] == ["probe/1.0"]


def _cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_text_no_driver_can_encode_is_refused(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    """JSON may escape a lone surrogate; UTF-8 cannot encode it: 422, never 500."""
    body = client.patch("/api/v1/users/me", json={"full_name": "x\ud800"}, headers=admin_headers)
    assert "full_name" in assert_problem(body, 422, "validation_error")["errors"]
    register = client.post(
        "/api/v1/auth/register", json={"email": "s@example.com", "password": "pass\udfff word 99"}
    )
    assert "password" in assert_problem(register, 422, "validation_error")["errors"]
    listed = client.get(
        "/api/v1/users",
        query_string={"email": "a", "cursor": _cursor(["email", "a\ud800"])},
        headers=admin_headers,
    )
    assert "cursor" in assert_problem(listed, 422, "validation_error")["errors"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/users", {"cursor": _cursor(["2026-01-01T00:00:00+00:00", 123])}),
        ("/api/v1/users", {"cursor": _cursor(["0001-01-01T00:00:00+05:00", str(uuid.uuid4())])}),
        ("/api/v1/users/me/events", {"cursor": _cursor([5, str(uuid.uuid4())])}),
        ("/api/v1/users/me/events", {"cursor": _raw_cursor("[" * 5000 + "]" * 5000)}),
        ("/api/v1/users", {"cursor": _raw_cursor('["email", ' + "9" * 5000 + "]")}),
        (
            "/api/v1/admin/audit-events",
            {"cursor": _cursor(["0001-01-01T00:30:00+01:00", str(uuid.uuid4())])},
        ),
        ("/api/v1/admin/audit-events", {"since": "0001-01-01T00:00:00+05:00"}),
        ("/api/v1/admin/audit-events", {"until": "0001-01-01T00:00:00+05:00"}),
    ],
)
def test_cursors_and_times_out_of_range_are_refused(
    client: FlaskClient, admin_headers: dict[str, str], path: str, query: dict[str, str]
) -> None:
    response = client.get(path, query_string=query, headers=admin_headers)
    problem = assert_problem(response, 422, "validation_error")
    assert set(problem["errors"]) == set(query)


def test_a_csrf_header_that_is_not_ascii_is_a_mismatch(client: FlaskClient, make_user: Any) -> None:
    user = make_user()
    login = client.post(
        "/api/v1/auth/login",
        query_string={"mode": "cookie"},
        json={"email": user.email, "password": PASSWORD},
    )
    assert login.status_code == 200, login.json
    response = client.patch(
        "/api/v1/users/me", json={"full_name": "Ann"}, headers={"X-CSRF-TOKEN": "caf\u00e9"}
    )
    assert_problem(response, 403, "csrf_failed")


def test_a_double_slash_is_not_found_not_redirected(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1//auth/login", json={}, headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert_problem(response, 404, "not_found")
    assert "Location" not in response.headers


def test_a_compressed_body_is_refused(client: FlaskClient) -> None:
    body = gzip.compress(json.dumps({"email": "a@example.com", "password": "x" * 12}).encode())
    response = client.post(
        "/api/v1/auth/login",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert_problem(response, 415, "unsupported_media_type")


def test_unknown_query_parameters_are_refused_everywhere_in_the_api(
    client: FlaskClient, user_headers: dict[str, str]
) -> None:
    for method, path in (
        ("GET", "/api/v1/users/me?role=admin"),
        ("GET", "/api/v1/auth/sessions?x=1"),
        ("POST", "/api/v1/auth/password/forgot?x=1"),
    ):
        response = client.open(
            path, method=method, json={"email": "a@example.com"}, headers=user_headers
        )
        body = assert_problem(response, 422, "validation_error")
        assert list(body["errors"]) == [path.split("?")[1].split("=")[0]], path
    # Probes and discovery documents tolerate a cache buster.
    assert client.get("/health/live?cachebust=1").status_code == 200
    assert client.get("/.well-known/jwks.json?v=2").status_code == 200


def test_a_repeated_query_parameter_is_refused(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/users?limit=1&limit=2", headers=admin_headers)
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == {"limit": ["Give this parameter once."]}
    assert client.get("/api/v1/users?limit=1", headers=admin_headers).status_code == 200


def test_argument_schemas_are_built_once_not_per_request(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = marshmallow.Schema.__init__

    def counting(self: marshmallow.Schema, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(marshmallow.Schema, "__init__", counting)
    login = client.post(
        "/api/v1/auth/login?mode=bearer", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401
    assert_problem(client.post("/api/v1/auth/login", json={"email": 5}), 422, "validation_error")
    assert built == []
