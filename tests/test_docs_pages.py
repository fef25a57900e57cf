"""Swagger UI and ReDoc: served from Warden's own files, under a Content-Security-Policy.

tests/test_browser.py loads both pages in Chromium with every other origin refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from project.api.docs import bundle_version
from tests.conftest import assert_problem

ROOT = Path(__file__).resolve().parent.parent
REDOC = ROOT / "project" / "static" / "redoc"
NPM_REDOC = ROOT / "node_modules" / "redoc"
PAGES = ("/api/v1/docs", "/api/v1/redoc")


class Elements(HTMLParser):
    """The start tags of a page, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag of ``html``."""
    parser = Elements()
    parser.feed(html)
    return parser.tags


def directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: sources}."""
    parts = (part.strip().split(" ", 1) for part in policy.split(";"))
    return {name: value for name, value in parts}


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_warden_files_and_run_no_inline_script(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    tags = elements(response.get_data(as_text=True))
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    # A script element without src is data for the page's own script, never code.
    assert all(attrs.get("src") or attrs.get("type") == "application/json" for attrs in scripts)
    urls = [attrs.get("src") for attrs in scripts if attrs.get("src")]
    urls += [attrs.get("href") for tag, attrs in tags if tag == "link"]
    assert urls and all(url and url.startswith("/api/v1/docs/assets/") for url in urls), urls
    for url in urls:
        assert url is not None
        assert client.get(url).status_code == 200, url


def test_swagger_ui_policy(client: FlaskClient) -> None:
    policy = directives(client.get("/api/v1/docs").headers["Content-Security-Policy"])
    assert policy == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "object-src": "'none'",
        "base-uri": "'none'",
    }


def test_redoc_policy_adds_a_fresh_style_nonce_and_blob_workers(client: FlaskClient) -> None:
    nonces = []
    for _ in range(2):
        response = client.get("/api/v1/redoc")
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["script-src"] == "'self'" and policy["worker-src"] == "blob:"
        styles = [
            attrs for tag, attrs in elements(response.get_data(as_text=True)) if tag == "style"
        ]
        nonce = styles[0]["nonce"]
        assert f"'nonce-{nonce}'" in policy["style-src"].split()
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_json_responses_carry_no_policy(client: FlaskClient) -> None:
    for path in ("/api/v1/openapi.json", "/health/live"):
        assert "Content-Security-Policy" not in client.get(path).headers


def test_assets_are_cached_for_a_year_under_their_version(client: FlaskClient) -> None:
    url = "/api/v1/docs/assets/swagger-ui/swagger-ui-bundle.js"
    current = client.get(url, query_string={"v": bundle_version("swagger-ui")})
    assert current.status_code == 200
    assert set(current.headers["Cache-Control"].split(", ")) == {
        "public",
        "max-age=31536000",
        "immutable",
    }
    assert "default-src 'none'" in current.headers["Content-Security-Policy"]
    for stale in ({"v": "0"}, {}):
        response = client.get(url, query_string=stale)
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.data == current.data


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/docs/assets/unknown/swagger-ui.css",
        "/api/v1/docs/assets/swagger-ui/missing.js",
        "/api/v1/docs/assets/redoc/../SHA256SUMS/../../../config.py",
    ],
)
def test_unknown_assets_are_404(client: FlaskClient, path: str) -> None:
    assert_problem(client.get(path), 404, "not_found")


def test_vendored_redoc_matches_its_checksum() -> None:
    expected = dict(
        reversed(line.split("  ", 1)) for line in (REDOC / "SHA256SUMS").read_text().splitlines()
    )
    for name, digest in expected.items():
        assert hashlib.sha256((REDOC / name).read_bytes()).hexdigest() == digest, "make vendor"


def test_vendored_redoc_is_the_pinned_npm_package() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["redoc"]
    if not NPM_REDOC.exists():
        if os.environ.get("CI"):
            pytest.fail("node_modules/redoc is missing: run npm ci first")
        pytest.skip("node_modules/redoc is missing (npm ci)")
    assert json.loads((NPM_REDOC / "package.json").read_text())["version"] == pinned, "npm ci"
    for name in ("redoc.standalone.js", "redoc.standalone.js.LICENSE.txt"):
        assert (REDOC / name).read_bytes() == (NPM_REDOC / "bundles" / name).read_bytes(), name
    assert (REDOC / "LICENSE").read_bytes() == (NPM_REDOC / "LICENSE").read_bytes()
