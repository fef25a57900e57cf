"""Provider and emailed sign-in from the example page (examples/web) in Debian's Chromium.

The real OpenID provider (oidc-provider) runs on 127.0.0.1, Warden and the page on two
ports of localhost: the provider's redirect back is a cross-site top-level navigation that
carries the flow cookie, and the page trades the code for the cookie-mode cookies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from config import oidc_providers
from tests.conftest import run_jobs
from tests.mailbox import Mailbox, free_port
from tests.providers import OidcProvider, node_missing
from tests.test_browser import (  # noqa: F401 (browser is a fixture)
    Browser,
    BrowserContext,
    browser,
    expect,
    expect_status,
    in_thread,
    serve_files,
)

pytestmark = pytest.mark.browser
ACCOUNTS = {"ada": {"email": "ada.op@example.org", "email_verified": True, "name": "Ada OP"}}


@dataclass
class Live:
    """The running API, page and provider."""

    api: str
    page: str
    app: Flask

    def page_url(self) -> str:
        return f"{self.page}/index.html?api={self.api}"


@pytest.fixture
def live(app_factory: Callable[..., Flask]) -> Iterator[Live]:
    """Warden with the local provider and emailed sign-in, and the example page."""
    if reason := node_missing():
        pytest.skip(reason)
    port = free_port()
    api = f"http://localhost:{port}"
    provider = OidcProvider(
        redirect_uris=[f"{api}/api/v1/auth/providers/local/callback"], accounts=ACCOUNTS
    )
    page_server = serve_files()
    page = f"http://localhost:{page_server.server_address[1]}"
    app = app_factory(
        CORS_ORIGINS=(page,),
        SIGNIN_REDIRECT_ORIGINS=(page,),
        COOKIE_SECURE=False,
        OIDC_PROVIDERS=oidc_providers(json.dumps([provider.setting()])),
        EMAIL_SIGNIN=True,
    )
    api_server = make_server("localhost", port, app, threaded=True)
    threads = [in_thread(server) for server in (page_server, api_server)]
    yield Live(api=api, page=page, app=app)
    for server in (api_server, page_server):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)
    provider.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811
    """A fresh cookie jar."""
    fresh = browser.new_context()
    fresh.set_default_timeout(15_000)
    yield fresh
    fresh.close()


def test_continue_with_the_provider(live: Live, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(live.page_url())
    button = page.get_by_test_id("provider-local")
    expect(button).to_have_text("Continue with Local OP")
    button.click()
    # The provider's development login and consent pages.
    page.locator("input[name=login]").fill("ada")
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()
    expect_status(page, "ok", "Signed in.")
    expect(page.get_by_test_id("profile-email")).to_have_text("ada.op@example.org")
    expect(page.get_by_test_id("profile-verified")).to_have_text("true")
    # The code left the address bar, and no token was ever in a URL.
    assert "#" not in page.url and "code=" not in page.url
    cookies = {cookie["name"] for cookie in context.cookies(live.api)}
    assert "access_token_cookie" in cookies
    assert "warden_signin" not in cookies


def test_sign_in_by_mailed_code(live: Live, context: BrowserContext, inbox: Mailbox) -> None:
    from tests.test_email_signin import user_in

    user_in(live.app, "coded@example.com")
    page = context.new_page()
    page.goto(live.page_url())
    page.get_by_test_id("email-signin-email").fill("coded@example.com")
    page.get_by_test_id("email-signin-submit").click()
    expect_status(page, "ok", "sign-in mail is on its way")
    run_jobs(live.app)
    mail = inbox.wait_for("coded@example.com", "Your sign-in code")
    code = re.search(r"enter this code: (\d{8})", mail.text).group(1)  # type: ignore[union-attr]
    page.get_by_test_id("email-code").fill(code)
    page.get_by_test_id("email-code-submit").click()
    expect_status(page, "ok", "Signed in.")
    expect(page.get_by_test_id("profile-email")).to_have_text("coded@example.com")
