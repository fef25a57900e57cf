"""Passkeys in headless Chromium: the example page against a live Warden, with the DevTools
virtual authenticator standing in for a platform authenticator (CTAP2, resident keys, user
verification).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import PASSWORD
from tests.live import call
from tests.test_browser import (
    AppFactory,
    Recorder,
    Servers,
    browser,
    clear_status,
    context,
    expect_status,
    fetch,
    in_thread,
    log_in,
    serve_files,
)

pytestmark = pytest.mark.browser

from playwright.sync_api import BrowserContext, CDPSession, Page, expect  # noqa: E402

__all__ = ["browser", "context"]  # fixtures used here


@pytest.fixture
def servers(app_factory: AppFactory) -> Iterator[Servers]:
    """The example page and a Warden whose relying party is that page (localhost)."""
    page_server = serve_files()
    page = f"http://localhost:{page_server.server_address[1]}"
    app: Flask = app_factory(
        CORS_ORIGINS=(page,),
        COOKIE_SECURE=False,  # plain http on localhost
        WEBAUTHN_RP_ID="localhost",
        WEBAUTHN_ORIGINS=(page,),
    )
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    api_server = make_server("localhost", 0, app, threaded=True)
    threads = [in_thread(server) for server in (page_server, api_server)]
    yield Servers(
        api=f"http://localhost:{api_server.port}", page=page, other_port=0, recorder=recorder
    )
    for server in (api_server, page_server):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)


def virtual_authenticator(cdp: CDPSession) -> str:
    """Plug a virtual platform authenticator into the page: a passkey provider with a PIN."""
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return str(added["authenticatorId"])


def credentials(cdp: CDPSession, authenticator: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    return list(found["credentials"])


def sign_out(page: Page) -> None:
    page.get_by_test_id("logout").click()
    expect_status(page, "ok", "Logged out.")
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed out")


def sign_in_with_passkey(page: Page) -> None:
    clear_status(page)
    page.get_by_test_id("passkey-sign-in").click()


def test_passkey_registration_discoverable_sign_in_and_clone_check(
    servers: Servers, context: BrowserContext
) -> None:
    api, recorder = servers.api, servers.recorder
    email = "ada.passkey@example.com"
    status, body = call(
        api, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD}
    )
    assert status == 201, body
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    first = virtual_authenticator(cdp)
    page.goto(servers.page_url())
    expect_status(page, "info", "Not logged in.")

    # Signed in with the password, add a passkey: a discoverable credential for "localhost".
    log_in(page, email)
    page.get_by_test_id("passkey-name").fill("Chromium")
    clear_status(page)
    page.get_by_test_id("add-passkey").click()
    expect_status(page, "ok", "Passkey added.")
    expect(page.get_by_test_id("passkey")).to_have_count(1)
    expect(page.get_by_test_id("passkey").first).to_contain_text("Chromium")
    held = credentials(cdp, first)
    assert len(held) == 1 and held[0]["isResidentCredential"] and held[0]["rpId"] == "localhost"

    # Signed out, sign in with the passkey alone: no email is typed, none is sent.
    sign_out(page)
    page.get_by_test_id("login-email").fill("")
    mark = recorder.mark()
    sign_in_with_passkey(page)
    expect_status(page, "ok", "Signed in with a passkey.")
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed in")
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    assert [e.status for e in recorder.since(mark, "POST", "/authenticate/verify")] == [200]
    assert not recorder.since(mark, "POST", "/auth/login")
    count = credentials(cdp, first)[0]["signCount"]
    assert count >= 1  # the authenticator counts its signatures

    # A copy of the passkey on a second authenticator, its counter behind the original's:
    # its sign-in is refused and the owner's trail says why.
    sign_out(page)
    cloned = {**held[0], "signCount": 0}
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first})
    second = virtual_authenticator(cdp)
    cdp.send("WebAuthn.addCredential", {"authenticatorId": second, "credential": cloned})
    mark = recorder.mark()
    sign_in_with_passkey(page)
    expect_status(page, "error", "passkey_clone_suspected")
    expect(page.get_by_test_id("auth-state")).to_have_text("Signed out")
    assert [e.status for e in recorder.since(mark, "POST", "/authenticate/verify")] == [401]

    # The original authenticator, its counter ahead of the stored one, still signs in.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": second})
    third = virtual_authenticator(cdp)
    original = {**held[0], "signCount": count}
    cdp.send("WebAuthn.addCredential", {"authenticatorId": third, "credential": original})
    sign_in_with_passkey(page)
    expect_status(page, "ok", "Signed in with a passkey.")
    trail = fetch(page, f"{api}/api/v1/users/me/events", credentials="include")
    kinds = [event["event_type"] for event in trail["body"]["items"]]
    assert "passkey.clone_suspected" in kinds and "passkey.registered" in kinds, kinds

    # A password login now needs a second factor (202); the passkey answers its challenge.
    sign_out(page)
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("second-factor-form")).to_be_visible()
    mark = recorder.mark()
    sign_in_with_passkey(page)
    expect_status(page, "ok", "Signed in with a passkey.")
    expect(page.get_by_test_id("second-factor-form")).to_be_hidden()
    verified = recorder.since(mark, "POST", "/authenticate/verify")
    assert [e.status for e in verified] == [200]
    sessions = fetch(page, f"{api}/api/v1/auth/sessions", credentials="include")["body"]
    assert next(s for s in sessions if s["current"])["amr"] == ["pwd", "webauthn"]
