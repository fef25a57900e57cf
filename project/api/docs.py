"""The API reference pages: Swagger UI and ReDoc from Warden's own origin, under a CSP."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, g, request, send_from_directory
from werkzeug.exceptions import NotFound

STATIC = Path(__file__).resolve().parent.parent / "static"
# Each bundle is a directory of files; the page templates add its version to the URLs.
BUNDLES = {
    "swagger-ui": Path(str(files("flask_swagger_ui") / "dist")),  # pinned in requirements.txt
    "redoc": STATIC / "redoc",  # vendored from the pinned npm package: make vendor
    "warden": STATIC / "docs",  # the pages' own start-up scripts
}
A_YEAR = 365 * 24 * 3600
SWAGGER_UI_PAGE = "api-docs.openapi_swagger_ui"
REDOC_PAGE = "api-docs.openapi_redoc"
# Scripts, styles and requests come from Warden's origin only: a page that can read the
# CSRF cookies runs no code from anywhere else, and nothing else may frame it.
POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",  # both UIs draw their icons as data: SVGs
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
    "base-uri": "'none'",
}

# On a ReDoc upgrade, tests/test_browser.py reports any new hash as a policy violation.
REDOC_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' "  # an empty <style>
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"  # perfect-scrollbar.css
)

blp = Blueprint("docs", __name__, url_prefix="/api/v1/docs/assets")


@blp.app_template_global("docs_version")
@cache
def bundle_version(bundle: str) -> str:
    """A digest of the bundle's files: the ``v`` under which their URLs are cached a year."""
    digest = hashlib.sha256()
    for path in sorted(BUNDLES[bundle].rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@blp.app_template_global()
def csp_nonce() -> str:
    """This page's nonce, for the style elements ReDoc creates as it renders."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    nonce: str = g.csp_nonce
    return nonce


@blp.get("/<bundle>/<path:filename>")
def asset(bundle: str, filename: str) -> Response:
    """One file of a bundle: cached for a year under its current version, else revalidated."""
    if bundle not in BUNDLES:
        raise NotFound()
    current = request.args.get("v") == bundle_version(bundle)
    # Without the current version a browser revalidates (ETag), so an upgrade shows at once.
    response = send_from_directory(BUNDLES[bundle], filename, max_age=A_YEAR if current else None)
    if current:
        response.cache_control.immutable = True
    return response


def content_security_policy(endpoint: str | None) -> str | None:
    """The policy for a docs page or asset, None for every other response."""
    if endpoint == REDOC_PAGE:
        directives = POLICY | {
            # ReDoc's CSS-in-JS writes <style> elements: it stamps them with this nonce. The
            # scrollbar stylesheet its bundle writes as it loads, before it knows the nonce, is
            # allowed by its hash (and by that of the empty element it starts as).
            "style-src": f"'self' 'nonce-{csp_nonce()}' {REDOC_STYLE_HASHES}",
            # ReDoc builds its search index in a worker started from a blob: URL.
            "worker-src": "blob:",
        }
    elif endpoint in (SWAGGER_UI_PAGE, "docs.asset"):
        directives = POLICY
    else:
        return None
    return "; ".join(f"{name} {value}" for name, value in directives.items())


@blp.after_app_request
def add_content_security_policy(response: Response) -> Response:
    """Send the docs pages' policy with those pages and their assets."""
    policy = content_security_policy(request.endpoint)
    if policy:
        response.headers["Content-Security-Policy"] = policy
    return response
