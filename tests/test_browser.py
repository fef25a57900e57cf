"""The cookie-mode example page (examples/web) in headless Chromium against a live server.

The API and the page are both served on "localhost" on two ports: two origins of one site,
so the SameSite=Lax cookies go with credentialed fetches, as for app.example.com and
api.example.com. Pages served from origins missing from CORS_ORIGINS must not read the API.

Swagger UI and ReDoc are loaded from a live Warden with every other origin refused, as on a
machine without internet, and must work with no Content-Security-Policy violation.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import PASSWORD
from tests.live import call

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Locator,
        Page,
        Route,
        expect,
        sync_playwright,
    )
except ImportError:
    pytest.skip(
        "the playwright package is missing (pip install playwright)", allow_module_level=True
    )

WEB = Path(__file__).resolve().parent.parent / "examples" / "web"
ACCESS_TTL = 3  # seconds: short enough to wait past it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AppFactory = Callable[..., Flask]
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass(frozen=True)
class Exchange:
    """One request the API answered."""

    method: str
    path: str
    status: int


class Recorder:
    """WSGI middleware that notes every answered request, to see what the browser sent."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            exchange = Exchange(environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status[:3]))
            with self._lock:
                self._exchanges.append(exchange)
            return start_response(status, headers, exc_info)

        return self.app(environ, record)

    def mark(self) -> int:
        """A position to read from later with ``since``."""
        with self._lock:
            return len(self._exchanges)

    def since(self, mark: int, method: str | None = None, path: str = "") -> list[Exchange]:
        """The exchanges after ``mark``, optionally of one method and path suffix."""
        with self._lock:
            found = self._exchanges[mark:]
        return [
            e for e in found if (method is None or e.method == method) and e.path.endswith(path)
        ]


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Servers:
    """The live API and the two static servers of the example page."""

    api: str  # http://localhost:<port>
    page: str  # the page, from an origin listed in CORS_ORIGINS
    other_port: int  # the page again, from origins that are not listed
    recorder: Recorder

    def page_url(self, origin: str | None = None) -> str:
        """The example page served from ``origin`` (the allowed one by default)."""
        return f"{origin or self.page}/index.html?api={self.api}"


def serve_files() -> ThreadingHTTPServer:
    """A static file server for examples/web on a free port of localhost."""
    handler = functools.partial(QuietHandler, directory=str(WEB))
    return ThreadingHTTPServer(("localhost", 0), handler)


def in_thread(server: ThreadingHTTPServer | BaseWSGIServer) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    return thread


@pytest.fixture
def servers(app_factory: AppFactory) -> Iterator[Servers]:
    """Start the static servers and a Warden that lets the page's origin in."""
    page_server, other_server = serve_files(), serve_files()
    page = f"http://localhost:{page_server.server_address[1]}"
    app = app_factory(
        CORS_ORIGINS=[page],
        COOKIE_SECURE=False,  # plain http on localhost
        ACCESS_TOKEN_TTL=ACCESS_TTL,
    )
    app.config["JWT_DECODE_LEEWAY"] = 0  # a Flask-JWT-Extended key, not a Warden setting
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    api_server = make_server("localhost", 0, app, threaded=True)
    threads = [in_thread(server) for server in (page_server, other_server, api_server)]
    yield Servers(
        api=f"http://localhost:{api_server.port}",
        page=page,
        other_port=other_server.server_address[1],
        recorder=recorder,
    )
    for server in (api_server, page_server, other_server):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright (no downloaded browser)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh cookie jar."""
    fresh = browser.new_context()
    fresh.set_default_timeout(10_000)
    yield fresh
    fresh.close()


def fetch(page: Page, url: str, **init: Any) -> dict[str, Any]:
    """Run fetch(url, init) in the page: {status, type, body} or {error} when it rejects."""
    result: dict[str, Any] = page.evaluate(
        """async ([url, init]) => {
            try {
                const response = await fetch(url, init);
                const text = await response.text();
                let body = text;
                try { body = JSON.parse(text); } catch {}
                return { status: response.status, type: response.type, body };
            } catch (error) {
                return { error: String(error) };
            }
        }""",
        [url, init],
    )
    return result


def expect_status(page: Page, kind: str, text: str) -> None:
    """The status area shows a message of this kind containing ``text``."""
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-kind", kind)
    expect(status).to_contain_text(text)


def register(page: Page, email: str, full_name: str) -> None:
    page.get_by_test_id("register-email").fill(email)
    page.get_by_test_id("register-password").fill(PASSWORD)
    page.get_by_test_id("register-name").fill(full_name)
    page.get_by_test_id("register-submit").click()
    expect_status(page, "ok", f"Registered {email}")


def log_in(page: Page, email: str) -> None:
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect_status(page, "ok", "Logged in.")
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed in")


def clear_status(page: Page) -> None:
    """Empty the status area, so that the next expect_status waits for a new message."""
    page.bring_to_front()  # background tabs are throttled
    page.get_by_test_id("status").evaluate("el => { el.textContent = ''; }")


def load_profile(page: Page) -> None:
    """Click "Load profile" and wait for the answer."""
    clear_status(page)
    page.get_by_test_id("load-profile").click()
    expect_status(page, "ok", "Profile loaded.")


def test_cookie_session_in_the_browser(servers: Servers, context: BrowserContext) -> None:
    api, recorder = servers.api, servers.recorder
    email = "ada.browser@example.com"
    page = context.new_page()
    page.goto(servers.page_url())
    expect(page.get_by_test_id("api-base")).to_have_text(api)
    expect_status(page, "info", "Not logged in.")

    # Register, then log in with cookie mode: profile and the one session are shown.
    register(page, email, "Ada Browser")
    log_in(page, email)
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    expect(page.get_by_test_id("profile-name")).to_have_text("Ada Browser")
    sessions = page.get_by_test_id("session")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_have_attribute("data-current", "true")
    tokens = [c for c in context.cookies(api) if c["name"].endswith("token_cookie")]
    assert tokens and all(c["httpOnly"] and c["sameSite"] == "Lax" for c in tokens)

    # CSRF is enforced: the cookies go along, but an unsafe request without the header fails.
    # (A 401 means the 3-second access cookie expired in between: load the profile again.)
    for _ in range(3):
        load_profile(page)
        patched = fetch(
            page,
            f"{api}/api/v1/users/me",
            method="PATCH",
            credentials="include",
            headers={"Content-Type": "application/json"},
            body='{"full_name": "Eve"}',
        )
        if patched["status"] != 401:
            break
    assert patched["status"] == 403 and patched["body"]["code"] == "csrf_failed", patched
    load_profile(page)
    expect(page.get_by_test_id("profile-name")).to_have_text("Ada Browser")

    # A second session, from a Bearer login outside the browser.
    status, other = call(api, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, other
    page.get_by_test_id("load-sessions").click()
    expect(sessions).to_have_count(2)

    # Past the access token's lifetime the profile still loads: 401, one refresh, retry.
    time.sleep(ACCESS_TTL + 0.5)
    mark = recorder.mark()
    load_profile(page)
    assert [e.status for e in recorder.since(mark, "GET", "/users/me")] == [401, 200]
    assert [e.status for e in recorder.since(mark, "POST", "/auth/refresh")] == [200]

    # A reload loses the CSRF tokens; the page reads them again from /auth/csrf and the
    # session goes on: revoking the other session is an unsafe request that needs them.
    mark = recorder.mark()
    page.reload()
    expect_status(page, "ok", "session restored")
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    assert [e.status for e in recorder.since(mark, "GET", "/auth/csrf")] == [200]
    expect(sessions).to_have_count(2)
    sessions.filter(has=page.get_by_test_id("revoke-session")).get_by_test_id(
        "revoke-session"
    ).click()
    expect_status(page, "ok", "Session revoked.")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_have_attribute("data-current", "true")
    status, body = call(api, "POST", "/api/v1/auth/refresh", token=other["refresh_token"])
    assert status == 401 and body["code"] == "token_revoked", body  # that session is over

    # A reload after the access cookie expired: /auth/csrf gives only the refresh CSRF
    # token, and the profile and sessions requests (in parallel) share one refresh.
    time.sleep(ACCESS_TTL + 0.5)
    mark = recorder.mark()
    page.reload()
    expect_status(page, "ok", "session restored")
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    expect(sessions).to_have_count(1)
    assert [e.status for e in recorder.since(mark, "POST", "/auth/refresh")] == [200]

    # Log out: the cookies are cleared and the profile no longer loads.
    page.get_by_test_id("logout").click()
    expect_status(page, "ok", "Logged out.")
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed out")
    assert not [c for c in context.cookies(api) if c["name"].endswith("token_cookie")]
    page.get_by_test_id("load-profile").click()
    expect_status(page, "error", "authorization_required")
    expect(page.get_by_test_id("status")).to_have_attribute("data-code", "authorization_required")
    expect(page.get_by_test_id("profile-email")).to_have_text("")
    anonymous = fetch(page, f"{api}/api/v1/users/me", credentials="include")
    assert anonymous["status"] == 401, anonymous


def test_origins_not_listed_cannot_use_the_api(servers: Servers, context: BrowserContext) -> None:
    api, recorder = servers.api, servers.recorder
    email = "eve.target@example.com"
    status, body = call(
        api, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD}
    )
    assert status == 201, body
    page = context.new_page()
    page.goto(servers.page_url())
    log_in(page, email)

    # Another site (127.0.0.1 is not localhost): the page cannot read a single answer.
    cross_site = context.new_page()
    cross_site.goto(servers.page_url(f"http://127.0.0.1:{servers.other_port}"))
    expect_status(cross_site, "error", "Network error")
    expect(cross_site.get_by_test_id("status")).to_have_attribute("data-code", "network_error")
    for init in ({}, {"credentials": "include"}):
        refused = fetch(cross_site, f"{api}/api/v1/openapi.json", **init)
        assert "error" in refused, refused  # TypeError: Failed to fetch
    opaque = fetch(cross_site, f"{api}/api/v1/openapi.json", mode="no-cors")
    assert opaque["type"] == "opaque" and opaque["status"] == 0 and opaque["body"] == ""
    # Its login form fails at the CORS preflight: the POST itself is never sent.
    clear_status(cross_site)
    mark = recorder.mark()
    cross_site.get_by_test_id("login-email").fill(email)
    cross_site.get_by_test_id("login-password").fill(PASSWORD)
    cross_site.get_by_test_id("login-submit").click()
    expect_status(cross_site, "error", "Network error")
    assert recorder.since(mark, "OPTIONS", "/auth/login")
    assert not recorder.since(mark, "POST", "/auth/login")

    # Another origin of the same site: the browser sends the cookies, but the page can read
    # neither the CSRF tokens nor the profile, and a blind POST fails the CSRF check.
    same_site = context.new_page()
    same_site.goto(servers.page_url(f"http://localhost:{servers.other_port}"))
    expect_status(same_site, "error", "Network error")
    for _ in range(3):
        load_profile(page)  # a fresh access cookie for the next few requests
        mark = recorder.mark()
        csrf = fetch(same_site, f"{api}/api/v1/auth/csrf", credentials="include")
        me = fetch(same_site, f"{api}/api/v1/users/me", credentials="include")
        logout = fetch(
            same_site,
            f"{api}/api/v1/auth/logout",
            method="POST",
            mode="no-cors",
            credentials="include",
        )
        answered = recorder.since(mark, "POST", "/auth/logout")
        if answered and answered[0].status != 401:
            break
    assert "error" in csrf and "error" in me, (csrf, me)
    assert [e.status for e in recorder.since(mark, "GET", "/users/me")] == [200]  # sent, not read
    assert logout["type"] == "opaque", logout
    assert [e.status for e in answered] == [403]  # csrf_failed
    load_profile(page)  # still logged in
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed in")


@dataclass
class Offline:
    """Requests the browser tried to send to any origin but Warden's, all refused."""

    origin: str
    refused: list[str]


@pytest.fixture
def warden(app_factory: AppFactory) -> Iterator[str]:
    """A live Warden on a free port of localhost: its origin."""
    server = make_server("localhost", 0, app_factory(), threaded=True)
    thread = in_thread(server)
    yield f"http://localhost:{server.port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def offline(context: BrowserContext, warden: str) -> Offline:
    """Let the browser reach Warden's origin only, as on a machine without internet."""
    seen = Offline(origin=warden, refused=[])

    def only_warden(route: Route) -> None:
        if route.request.url.startswith(warden + "/"):
            route.continue_()
        else:
            seen.refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_warden)
    return seen


def watch_policy(page: Page) -> list[str]:
    """Collect the page's Content-Security-Policy violations and console errors about them."""
    violations: list[str] = []

    def note(text: str) -> None:
        violations.append(text)

    def note_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.expose_function("reportViolation", note)
    page.add_init_script(
        """document.addEventListener("securitypolicyviolation", (event) =>
            window.reportViolation(`${event.violatedDirective} ${event.blockedURI}`));"""
    )
    page.on("console", note_console)
    return violations


def operation(page: Page, method: str, path: str) -> Locator:
    """One operation's block in Swagger UI, expanded."""
    block = page.locator(f".opblock-{method}", has=page.locator(f'[data-path="{path}"]')).first
    if not block.locator(".opblock-body").count():
        block.locator(".opblock-summary").first.click()
    return block


def try_it_out(block: Locator, body: dict[str, Any] | None = None) -> Any:
    """Run an operation with "Try it out" and return the JSON body of the 200 it answers."""
    block.get_by_role("button", name="Try it out").click()
    if body is not None:
        block.locator("textarea.body-param__text").fill(json.dumps(body))
    block.get_by_role("button", name="Execute").click()
    live = block.locator(".live-responses-table .response").first
    expect(live.locator(".response-col_status")).to_have_text("200")
    return json.loads(live.locator(".response-col_description pre").first.inner_text())


def test_swagger_ui_works_offline_under_its_policy(
    warden: str, offline: Offline, context: BrowserContext
) -> None:
    email = "grace.docs@example.com"
    status, body = call(
        warden, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD}
    )
    assert status == 201, body
    page = context.new_page()
    violations = watch_policy(page)
    page.goto(f"{warden}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Warden")

    # Log in with "Try it out", then put the access token into "Authorize".
    tokens = try_it_out(
        operation(page, "post", "/api/v1/auth/login"), {"email": email, "password": PASSWORD}
    )
    page.locator(".auth-wrapper .authorize").click()
    bearer = page.locator(".auth-container", has=page.get_by_text("bearerAuth"))
    bearer.locator("input").fill(tokens["access_token"])
    bearer.locator("button.authorize").click()
    page.locator(".modal-ux button.btn-done").first.click()

    me = try_it_out(operation(page, "get", "/api/v1/users/me"))
    assert me["email"] == email
    assert not violations
    assert offline.refused == []


def test_redoc_renders_offline_under_its_policy(
    warden: str, offline: Offline, context: BrowserContext
) -> None:
    page = context.new_page()
    violations = watch_policy(page)
    page.goto(f"{warden}/api/v1/redoc")
    expect(page.locator("h1").first).to_contain_text("Warden")
    expect(page.get_by_role("heading", name="Log in").first).to_be_visible()
    # The search box works: its index is built in a worker the policy lets start.
    page.get_by_placeholder("Search...").fill("refresh")
    expect(page.locator('[role="search"] li').first).to_be_visible()
    # The one address outside Warden in ReDoc's bundle, the Redocly logo in its footer, is
    # refused by the policy, and ReDoc leaves the image out. Nothing else is refused.
    expect(page.locator('img[alt="redocly logo"]')).to_have_count(0)
    assert violations and all(REDOCLY_LOGO in violation for violation in violations)
    assert offline.refused == []


def test_setting_up_an_authenticator_app_and_signing_in_with_it(
    servers: Servers, context: BrowserContext
) -> None:
    import pyotp

    email = "hedy.browser@example.com"
    page = context.new_page()
    page.goto(servers.page_url())
    register(page, email, "Hedy Browser")
    log_in(page, email)

    page.get_by_test_id("totp-password").fill(PASSWORD)
    page.get_by_test_id("totp-start").click()
    expect_status(page, "info", "Scan the code")
    qr = page.get_by_test_id("totp-qr")
    expect(qr).to_have_attribute("src", _starts_with("data:image/svg+xml"))
    qr.evaluate("img => img.decode()")  # rejects when the SVG does not render
    assert qr.evaluate("img => img.naturalWidth") > 0
    totp = pyotp.TOTP(page.get_by_test_id("totp-secret").inner_text())
    page.get_by_test_id("totp-code").fill("000000")
    page.get_by_test_id("totp-confirm").click()
    expect_status(page, "error", "invalid_code")
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed in")
    page.get_by_test_id("totp-code").fill(totp.now())
    page.get_by_test_id("totp-confirm").click()
    expect_status(page, "ok", "Authenticator app set up")
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)

    page.get_by_test_id("logout").click()
    expect_status(page, "ok", "Logged out.")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect_status(page, "info", "authenticator app")
    assert not [c for c in context.cookies(servers.api) if c["name"].endswith("token_cookie")]
    # The confirmation spent this step's code; the next step's is accepted.
    page.get_by_test_id("second-factor-code").fill(totp.at(time.time() + 30))
    page.get_by_test_id("second-factor-submit").click()
    expect_status(page, "ok", "Logged in.")
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    expect(page.get_by_test_id("second-factor-form")).to_be_hidden()


def _starts_with(prefix: str) -> Any:
    import re

    return re.compile("^" + re.escape(prefix))
