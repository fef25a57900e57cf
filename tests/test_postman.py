"""The Postman collection covers every operation of docs/openapi.json (JSON only, no node)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask_limiter.util import get_qualified_name

from config import DECLARATIONS, RATELIMIT_SETTINGS
from project import create_app
from project.core.passwords import password_problems
from project.extensions import limiter
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
POSTMAN = ROOT / "docs" / "postman"
COLLECTION = POSTMAN / "warden.postman_collection.json"
ENVIRONMENT = POSTMAN / "warden.local.postman_environment.json"
OPENAPI = ROOT / "docs" / "openapi.json"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
FOLDERS = ("Health", "Auth", "Sessions", "Users", "Admin", "Errors")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
COVERED_PREFIXES = ("/api/v1/", "/health/", "/.well-known/jwks.json")
VARIABLE = re.compile(r"\{\{([^{}]+)\}\}")
SET_VARIABLE = re.compile(r"pm\.(?:environment|collectionVariables|variables)\.set\(\s*'([^']+)'")
STATUS_ASSERTION = re.compile(r"pm\.response\.to\.have\.status\((\d{3})\)")
PM_TEST = re.compile(r"pm\.test\(")
PROBLEM_CODE = re.compile(r"problem\.code\)\.to\.eql\('([a-z_]+)'\)")
RATE_LIMITED_GUARD = "if (pm.response.code === 429) return;"


@dataclass(frozen=True)
class Request:
    """One request of the collection with the folders it sits in."""

    folders: tuple[str, ...]
    name: str
    item: dict[str, Any]

    @property
    def title(self) -> str:
        """Folder path and name, for messages."""
        return " / ".join((*self.folders, self.name))

    @property
    def method(self) -> str:
        """The HTTP method, upper case."""
        return str(self.item["request"]["method"]).upper()

    @property
    def url(self) -> dict[str, Any]:
        """The structured URL."""
        url: dict[str, Any] = self.item["request"]["url"]
        return url

    @property
    def path(self) -> str:
        """The URL path after {{baseUrl}}, without the query."""
        return "/" + "/".join(self.url["path"])

    def scripts(self, listen: str) -> list[str]:
        """The request's scripts of one kind (``test`` or ``prerequest``), as text."""
        return [
            "\n".join(event["script"]["exec"])
            for event in self.item.get("event", [])
            if event["listen"] == listen
        ]

    @property
    def asserted_statuses(self) -> set[int]:
        """The statuses the test scripts assert with pm.response.to.have.status."""
        return {
            int(code) for text in self.scripts("test") for code in STATUS_ASSERTION.findall(text)
        }


@cache
def collection() -> dict[str, Any]:
    """The collection file, parsed."""
    data: dict[str, Any] = json.loads(COLLECTION.read_text())
    return data


@cache
def environment() -> dict[str, Any]:
    """The environment file, parsed."""
    data: dict[str, Any] = json.loads(ENVIRONMENT.read_text())
    return data


@cache
def openapi() -> dict[str, Any]:
    """docs/openapi.json, parsed."""
    data: dict[str, Any] = json.loads(OPENAPI.read_text())
    return data


def walk(items: list[dict[str, Any]], folders: tuple[str, ...] = ()) -> Iterator[Request]:
    """Every request under ``items``, depth first, in run order."""
    for item in items:
        if "item" in item:
            yield from walk(item["item"], (*folders, item["name"]))
        else:
            yield Request(folders, item["name"], item)


def requests() -> list[Request]:
    """Every request of the collection in run order."""
    return list(walk(collection()["item"]))


@cache
def default_routes() -> set[tuple[str, str]]:
    """(METHOD, path template) of every route a deployment with the default settings serves."""
    app = create_app(make_settings(REDIS_URL=None))
    return {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
    }


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path template) of the OpenAPI document that a default deployment serves.

    The collection runs against one (make postman); the operations mounted only when
    configured (identity providers, emailed sign-in) are exercised by their own tests.
    """
    return [
        (method.upper(), path)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in METHODS and (method.upper(), path) in default_routes()
    ]


def matches(request_path: str, template: str) -> bool:
    """Whether a Postman path (with {{vars}}) is an instance of an OpenAPI path template."""
    # A {{variable}} segment stands for one {parameter} segment and literals must be equal, so
    # /users/me is not taken for /users/{user_id}.
    got = request_path.strip("/").split("/")
    want = template.strip("/").split("/")
    if len(got) != len(want):
        return False
    for segment, pattern in zip(got, want, strict=True):
        is_parameter = pattern.startswith("{") and pattern.endswith("}")
        if VARIABLE.fullmatch(segment):
            if not is_parameter:
                return False
        elif is_parameter or segment != pattern:
            return False
    return True


def operation_of(request: Request) -> tuple[str, str] | None:
    """The OpenAPI operation a request calls, or None (unknown routes, 405 probes)."""
    for method, template in operations():
        if method == request.method and matches(request.path, template):
            return method, template
    return None


def success_statuses(method: str, template: str) -> set[int]:
    """The 2xx statuses the OpenAPI document lists for an operation."""
    responses = openapi()["paths"][template][method.lower()]["responses"]
    return {int(code) for code in responses if code.isdigit() and code.startswith("2")}


def test_collection_is_postman_v2_1() -> None:
    """The file is a v2.1 collection with a name and requests."""
    info = collection()["info"]
    assert info["schema"] == SCHEMA_V21
    assert info["name"]
    assert requests()


def test_folders_per_domain() -> None:
    """Top-level folders exist for every domain and for the error cases; no loose requests."""
    top = [item["name"] for item in collection()["item"]]
    for name in FOLDERS:
        assert name in top, f"no {name} folder in {top}"
    loose = [item["name"] for item in collection()["item"] if "item" not in item]
    assert not loose, f"requests outside a folder: {loose}"
    for item in collection()["item"]:
        assert item["item"], f"folder {item['name']} is empty"


def test_request_names_are_unique() -> None:
    """Request names are unique, so a failure report (or newman --folder) names one request."""
    names = [r.name for r in requests()]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_openapi_operations_are_the_covered_kinds() -> None:
    """The document holds only /api/v1, /health and JWKS paths, so all of them are covered."""
    outside = [path for _, path in operations() if not path.startswith(COVERED_PREFIXES)]
    assert not outside, f"paths the collection is not asked to cover: {outside}"
    assert len(operations()) >= 20


@pytest.mark.parametrize(
    ("method", "template"), operations(), ids=[f"{m} {p}" for m, p in operations()]
)
def test_every_operation_has_a_request(method: str, template: str) -> None:
    """Each operation is called by at least one request that asserts a documented 2xx."""
    calling = [r for r in requests() if operation_of(r) == (method, template)]
    assert calling, f"no request in the collection calls {method} {template}"
    wanted = success_statuses(method, template)
    succeeding = [r.title for r in calling if r.asserted_statuses & wanted]
    assert succeeding, (
        f"{method} {template}: no request asserts a success status {sorted(wanted)}; "
        f"requests: {[r.title for r in calling]}"
    )


@pytest.mark.parametrize("request_", requests(), ids=lambda r: r.title)
def test_every_request_asserts_its_status(request_: Request) -> None:
    """Every request has a test script with pm.test assertions, one of them on the status."""
    tests = request_.scripts("test")
    assert tests, f"{request_.title}: no test script"
    assert any(PM_TEST.search(text) for text in tests), f"{request_.title}: no pm.test"
    assert len(request_.asserted_statuses) == 1, (
        f"{request_.title}: expected one pm.response.to.have.status(...) assertion, "
        f"got {sorted(request_.asserted_statuses)}"
    )


@pytest.mark.parametrize("request_", requests(), ids=lambda r: r.title)
def test_urls_are_consistent(request_: Request) -> None:
    """Every URL starts at {{baseUrl}}, and its raw form agrees with path and query."""
    url = request_.url
    assert url["host"] == ["{{baseUrl}}"], request_.title
    query = "&".join(f"{q['key']}={q['value']}" for q in url.get("query", []))
    raw = "{{baseUrl}}" + request_.path + (f"?{query}" if query else "")
    assert url["raw"] == raw, request_.title


def error_requests() -> list[Request]:
    """The requests that expect a 4xx or 5xx answer."""
    return [r for r in requests() if any(code >= 400 for code in r.asserted_statuses)]


@pytest.mark.parametrize("request_", error_requests(), ids=lambda r: r.title)
def test_errors_are_problem_documents(request_: Request) -> None:
    """A request that expects an error checks the problem+json content type and the code."""
    text = "\n".join(request_.scripts("test"))
    assert "application/problem+json" in text, request_.title
    assert PROBLEM_CODE.search(text), f"{request_.title}: the problem code is not checked"


def test_error_cases_are_covered() -> None:
    """The Errors folder asserts the common problem codes."""
    wanted = {
        (422, "validation_error"),
        (401, "authorization_required"),
        (401, "invalid_credentials"),
        (404, "not_found"),
        (403, "forbidden"),
        (409, "email_taken"),
    }
    found = set()
    for request_ in requests():
        if request_.folders[:1] != ("Errors",):
            continue
        text = "\n".join(request_.scripts("test"))
        for status in request_.asserted_statuses:
            found |= {(status, code) for code in PROBLEM_CODE.findall(text)}
    assert wanted <= found, f"missing in Errors: {sorted(wanted - found)}"


def test_tokens_flow_from_login_into_later_requests() -> None:
    """Login scripts save the tokens, and later requests use them as Bearer tokens."""
    saved = {
        name
        for request_ in requests()
        for text in request_.scripts("test")
        for name in SET_VARIABLE.findall(text)
    }
    assert {"accessToken", "refreshToken", "userId", "sessionId", "adminToken"} <= saved
    bearer = [r for r in requests() if r.item["request"].get("auth", {}).get("type") == "bearer"]
    assert any(
        entry["value"] == "{{accessToken}}"
        for request_ in bearer
        for entry in request_.item["request"]["auth"]["bearer"]
    )


def used_variables(value: Any) -> Iterator[str]:
    """Every {{variable}} in the strings of a request (URL, headers, body, auth)."""
    if isinstance(value, str):
        yield from VARIABLE.findall(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "description":
                yield from used_variables(item)
    elif isinstance(value, list):
        for item in value:
            yield from used_variables(item)


def test_every_variable_is_defined() -> None:
    """Each {{variable}} is in the environment, set by an earlier script, or dynamic ($guid)."""
    known = {value["key"] for value in environment()["values"]}
    set_so_far: set[str] = set()
    for request_ in requests():
        for text in request_.scripts("prerequest"):
            set_so_far |= set(SET_VARIABLE.findall(text))
        for name in used_variables(request_.item["request"]):
            if name.startswith("$"):
                continue
            assert name in known, f"{request_.title}: {{{{{name}}}}} is not in the environment"
            assert name in set_so_far or environment_default(name), (
                f"{request_.title}: {{{{{name}}}}} is used before any script sets it"
            )
        for text in request_.scripts("test"):
            set_so_far |= set(SET_VARIABLE.findall(text))


def environment_default(name: str) -> bool:
    """Whether the environment file (or the runner's --env-var) gives ``name`` a value."""
    values = {value["key"]: value["value"] for value in environment()["values"]}
    return bool(values.get(name)) or name in ("adminPassword",)


def test_environment_file_parses() -> None:
    """The environment is a Postman environment with the settings the runner overrides."""
    env = environment()
    assert env["_postman_variable_scope"] == "environment"
    assert env["name"]
    keys = [value["key"] for value in env["values"]]
    assert len(keys) == len(set(keys)), "duplicate keys"
    for key in ("baseUrl", "adminEmail", "adminPassword", "password", "newPassword"):
        assert key in keys
    values = {value["key"]: value["value"] for value in env["values"]}
    assert values["baseUrl"].startswith("http")
    for value in env["values"]:
        assert value["type"] in ("default", "secret"), value
        assert value["enabled"] is True


@pytest.mark.parametrize("key", ["password", "newPassword"])
def test_environment_passwords_pass_the_policy(key: str) -> None:
    """The passwords the collection registers with are acceptable to Warden."""
    values = {value["key"]: value["value"] for value in environment()["values"]}
    assert password_problems(values[key], email="ada.lovelace@example.com") == []


def collection_scripts(listen: str) -> str:
    """The collection-level scripts of one kind, as text."""
    return "\n".join(
        "\n".join(event["script"]["exec"])
        for event in collection().get("event", [])
        if event["listen"] == listen
    )


def test_a_rate_limited_request_is_waited_out_and_sent_again() -> None:
    """The collection's test script waits out Retry-After and repeats the 429'd request."""
    text = collection_scripts("test")
    assert "pm.response.code === 429" in text
    assert "Retry-After" in text
    assert "setTimeout(" in text
    assert "pm.execution.setNextRequest(name)" in text
    assert "const name = pm.info.requestName;" in text


@pytest.mark.parametrize("request_", requests(), ids=lambda r: r.title)
def test_request_tests_pass_over_a_429(request_: Request) -> None:
    """Each request's tests leave a 429 to the collection's retry instead of failing on it."""
    first_lines = [text.splitlines()[0] for text in request_.scripts("test")]
    assert first_lines and first_lines[0].startswith(RATE_LIMITED_GUARD), request_.title


def production_limits_per_route() -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(amount, seconds) of each route's own limits at the production defaults."""
    defaults = {name: DECLARATIONS[name].default for name in RATELIMIT_SETTINGS}
    app = create_app(make_settings(**defaults, REDIS_URL=None))
    limits: dict[tuple[str, str], list[tuple[int, int]]] = {}
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            found = limiter.limit_manager.decorated_limits(get_qualified_name(view))
            for method in rule.methods or ():
                if found:
                    limits[(method, rule.rule)] = [
                        (limit.limit.amount, limit.limit.get_expiry()) for limit in found
                    ]
    return limits


def test_one_run_keeps_within_the_production_per_minute_limits() -> None:
    """No route gets more requests in one run than its production per-minute limit allows."""
    limits = production_limits_per_route()
    assert ("POST", "/api/v1/auth/login") in limits
    sent: dict[tuple[str, str], int] = {}
    for request_ in requests():
        key = (request_.method, request_.path)
        sent[key] = sent.get(key, 0) + 1
    over = {
        f"{method} {path}": (count, amount)
        for (method, path), count in sent.items()
        for amount, seconds in limits.get((method, path), [])
        if seconds <= 60 and count > amount
    }
    assert not over, f"requests per run above the per-minute limit (sent, limit): {over}"


def test_the_teardown_deletes_every_account_of_the_run() -> None:
    """The last folder lists the run's accounts by their prefix and deletes what is left."""
    teardown = [r for r in requests() if r.folders[:1] == ("Teardown",)]
    sweep = [r for r in teardown if r.path == "/api/v1/users" and r.method == "GET"]
    assert sweep, "no admin listing of the run's accounts in Teardown"
    assert {"key": "email", "value": "{{runPrefix}}"} in sweep[0].url["query"]
    tests = "\n".join(sweep[0].scripts("test"))
    assert "method: 'DELETE'" in tests
    assert "'/api/v1/users/' + user.id" in tests
    register = next(r for r in requests() if r.name == "Register a user")
    setup = "\n".join(register.scripts("prerequest"))
    for variable in ("userEmail", "secondEmail", "newEmail"):
        assert f"pm.environment.set('{variable}', prefix + " in setup
