"""CORS is granted only to the configured origins."""

from __future__ import annotations

from project import create_app
from tests.conftest import make_settings

ALLOWED = "https://app.example.com"


def test_allowed_origin_gets_cors_headers() -> None:
    client = create_app(make_settings(CORS_ORIGINS=[ALLOWED])).test_client()
    preflight = client.options(
        "/api/v1/auth/login",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Authorization",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    response = client.get("/api/v1/openapi.json", headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


def test_other_origins_get_nothing() -> None:
    client = create_app(make_settings(CORS_ORIGINS=[ALLOWED])).test_client()
    response = client.get("/api/v1/openapi.json", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origins_configured_means_no_cors() -> None:
    client = create_app(make_settings(CORS_ORIGINS=[])).test_client()
    response = client.get("/api/v1/openapi.json", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/api/v1/auth/login",
        headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert not any(name.startswith("Access-Control") for name, _ in preflight.headers.items())


def test_answers_under_the_api_vary_by_origin() -> None:
    """A cache must not hand one origin's CORS headers (or their absence) to another."""
    client = create_app(make_settings(CORS_ORIGINS=[ALLOWED])).test_client()
    for origin in (ALLOWED, "https://elsewhere.example"):
        response = client.get("/api/v1/openapi.json", headers={"Origin": origin})
        assert "Origin" in response.vary
    no_cors = create_app(make_settings(CORS_ORIGINS=[])).test_client()
    assert "Origin" not in no_cors.get("/api/v1/openapi.json").vary
