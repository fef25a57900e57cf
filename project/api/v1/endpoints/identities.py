"""Sign-in with identity providers, the caller's linked identities, and emailed sign-in.

Mounted only when configured: the provider routes with OIDC_PROVIDERS or GitHub, the
emailed sign-in with EMAIL_SIGNIN. Otherwise they are neither served nor documented.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import Response, after_this_request, redirect, request, url_for

from project.api.arguments import Blueprint
from project.api.auth import auth_required, client_info, current_user, deliver_tokens
from project.api.ratelimits import code_limit, email_limit
from project.api.v1.endpoints.auth import challenge_response
from project.core import errors
from project.core.settings import current_settings
from project.models import Identity
from project.schemas.auth import (
    TOKENS_DOC,
    AcceptedSchema,
    EmailSchema,
    LoginQuerySchema,
    SecondFactorChallengeSchema,
    TokenDelivery,
)
from project.schemas.federation import (
    AuthorizationUrlSchema,
    AuthorizeQuerySchema,
    CallbackQuerySchema,
    EmailSignInCodeSchema,
    IdentitySchema,
    LinkSchema,
    ProviderSchema,
    SignInCodeSchema,
)
from project.services import email_signin, federation, providers, signin
from project.services.providers import Provider
from project.services.signin import Challenge, SignIn

CHALLENGE_DOC = {
    "schema": SecondFactorChallengeSchema,
    "description": "The account has a second factor: answer the challenge at"
    " /auth/login/second-factor; no token yet",
}


def _signed_in(result: SignIn | Challenge, *, cookie: bool) -> Response:
    if isinstance(result, Challenge):
        return challenge_response(result)
    return deliver_tokens(result.tokens, cookie=cookie)


providers_blp = Blueprint(
    "identities",
    __name__,
    url_prefix="/api/v1",
    description="Sign-in with identity providers, and the caller's linked identities",
)
email_blp = Blueprint(
    "email_signin", __name__, url_prefix="/api/v1/auth", description="Passwordless sign-in by mail"
)

# The cookie that binds a started sign-in to this browser (see services.federation).
FLOW_COOKIE = "warden_signin"
FLOW_PATH = "/api/v1/auth/providers"


def _callback_uri(provider: str) -> str:
    return url_for("identities.provider_callback", provider=provider, _external=True)


def _set_flow_cookie(value: str, *, max_age: int) -> None:
    @after_this_request
    def set_cookie(response: Response) -> Response:
        # Lax: sent on the provider's top-level redirect back, never on cross-site posts.
        response.set_cookie(
            FLOW_COOKIE,
            value,
            max_age=max_age,
            path=FLOW_PATH,
            secure=current_settings().COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
        return response


@providers_blp.route("/auth/providers", methods=["GET"])
@providers_blp.response(200, ProviderSchema(many=True))
def list_providers() -> list[Provider]:
    """List the identity providers users can sign in with.

    One entry per configured provider, for the frontend's sign-in buttons: start with
    `GET /auth/providers/{name}/authorize`.
    """
    return list(providers.configured().values())


@providers_blp.route("/auth/providers/<provider>/authorize", methods=["GET"])
@providers_blp.arguments(AuthorizeQuerySchema, location="query")
@providers_blp.response(302, description="To the provider's sign-in page")
@providers_blp.alt_response(400, response="BAD_REQUEST", description="`invalid_redirect`")
@providers_blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
@providers_blp.alt_response(
    503, response="SERVICE_UNAVAILABLE", description="`provider_unavailable`"
)
def authorize(query: dict[str, Any], provider: str) -> Response:
    """Start signing in with a provider: open this in the browser (a top-level navigation).

    Redirects to the provider with PKCE, `state` and (OpenID Connect) `nonce`, and binds
    them to this browser with a short-lived HttpOnly cookie. After the provider, the
    browser returns to `return_to` with `#code=<code>`: trade it with
    `POST /auth/providers/sign-in`. `link` is the ticket from `POST /users/me/identities`.
    """
    started = federation.start(
        provider=provider,
        redirect_uri=_callback_uri(provider),
        return_to=query.get("return_to"),
        link_ticket=query.get("link"),
    )
    _set_flow_cookie(started.flow, max_age=federation.FLOW_TTL)
    return redirect(started.url, code=302)  # type: ignore[return-value]


@providers_blp.route("/auth/providers/<provider>/callback", methods=["GET"])
@providers_blp.arguments(CallbackQuerySchema, location="query", unknown=ma.EXCLUDE)
@providers_blp.response(302, description="To `return_to` with `#code=` or `#linked=`")
@providers_blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
@providers_blp.alt_response(
    400, response="BAD_REQUEST", description="`sign_in_flow_invalid`, `provider_refused`"
)
@providers_blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_id_token`")
@providers_blp.alt_response(
    403, response="FORBIDDEN", description="`provider_email_unverified`, `account_disabled`"
)
@providers_blp.alt_response(
    409, response="CONFLICT", description="`identity_link_required`, `identity_taken`"
)
@providers_blp.alt_response(
    503, response="SERVICE_UNAVAILABLE", description="`provider_unavailable`"
)
def provider_callback(query: dict[str, Any], provider: str) -> Response:
    """Where the provider sends the browser back; not called by clients.

    Checks the flow cookie and `state`, trades the code with the PKCE verifier, checks the
    ID token (issuer, audience, expiry, signature, nonce), applies the account rules and
    redirects to the frontend with a single-use code. Tokens never appear in a URL.
    """
    # The flow is over whatever happens next: the cookie goes.
    _set_flow_cookie("", max_age=0)
    location = federation.callback(
        provider=provider,
        flow=request.cookies.get(FLOW_COOKIE),
        state=query.get("state"),
        code=query.get("code"),
        error=query.get("error"),
        redirect_uri=_callback_uri(provider),
    )
    return redirect(location, code=302)  # type: ignore[return-value]


@providers_blp.route("/auth/providers/sign-in", methods=["POST"])
@code_limit
@providers_blp.arguments(SignInCodeSchema, example={"code": "Zb3kQ0x9..."})
@providers_blp.arguments(LoginQuerySchema, location="query")
@providers_blp.response(200, TOKENS_DOC)
@providers_blp.alt_response(202, **CHALLENGE_DOC)
@providers_blp.alt_response(400, response="BAD_REQUEST", description="`invalid_token`")
@providers_blp.alt_response(403, response="FORBIDDEN", description="`account_disabled`")
def provider_sign_in(data: dict[str, Any], query: dict[str, Any]) -> Response:
    """Trade the code from a provider sign-in for the token pair (once, within 2 minutes).

    An account with a second factor is answered 202 with a challenge, as at login.
    """
    user, methods = federation.redeem_sign_in_code(code=data["code"])
    result = signin.finish(user, client_info(), methods=methods)
    return _signed_in(result, cookie=query["mode"] is TokenDelivery.COOKIE)


@providers_blp.route("/users/me/identities", methods=["GET"])
@auth_required
@providers_blp.response(200, IdentitySchema(many=True))
def list_identities() -> list[Identity]:
    """List the caller's linked identities.

    Each is an account at a provider that signs in to this one, with the address the
    provider gave at its last use.
    """
    return federation.list_identities(user_id=current_user.id)


@providers_blp.route("/users/me/identities", methods=["POST"])
@auth_required
@providers_blp.arguments(LinkSchema, example={"provider": "github"})
@providers_blp.response(200, AuthorizationUrlSchema)
@providers_blp.alt_response(400, response="BAD_REQUEST", description="`invalid_redirect`")
@providers_blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def link_identity(data: dict[str, Any]) -> dict[str, str]:
    """Start linking a provider: open the returned URL in the browser within a minute.

    The browser returns to `return_to` with `#linked=<provider>`.
    """
    ticket = federation.link_ticket(
        user_id=current_user.id, provider=data["provider"], return_to=data.get("return_to")
    )
    url = url_for(
        "identities.authorize",
        provider=data["provider"],
        link=ticket,
        _external=True,
        **({"return_to": data["return_to"]} if data.get("return_to") else {}),
    )
    return {"authorization_url": url}


@providers_blp.route("/users/me/identities/<uuid:identity_id>", methods=["DELETE"])
@auth_required
@providers_blp.response(204)
@providers_blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
@providers_blp.alt_response(409, response="CONFLICT", description="`last_sign_in_method`")
def unlink_identity(identity_id: uuid.UUID) -> None:
    """Unlink an identity; the account's last way to sign in stays.

    An account without a password keeps its last identity: 409 `last_sign_in_method`.
    """
    federation.unlink(user_id=current_user.id, identity_id=identity_id)


ACCEPTED = {"detail": "If the address has an account, a sign-in mail is on its way."}


@email_blp.route("/email-signin", methods=["POST"])
@email_limit
@email_blp.arguments(EmailSchema, example={"email": "ada@example.com"})
@email_blp.response(202, AcceptedSchema)
def request_email_sign_in(data: dict[str, Any]) -> dict[str, str]:
    """Mail a sign-in link and code; the answer is the same for every address.

    Both work once and expire after EMAIL_SIGNIN_TTL seconds (10 minutes); mails per address
    follow MAIL_BUDGET and requests per client address RATELIMIT_EMAIL.
    """
    email_signin.request(email=data["email"])
    return ACCEPTED


@email_blp.route("/email-signin/redeem", methods=["POST"])
@code_limit
@email_blp.arguments(
    EmailSignInCodeSchema, example={"email": "ada@example.com", "code": "04817263"}
)
@email_blp.arguments(LoginQuerySchema, location="query")
@email_blp.response(200, TOKENS_DOC)
@email_blp.alt_response(202, **CHALLENGE_DOC)
@email_blp.alt_response(400, response="BAD_REQUEST", description="`invalid_token`")
def redeem_email_sign_in(data: dict[str, Any], query: dict[str, Any]) -> Response:
    """Sign in with the mailed link's `token`, or with `email` and the mailed `code`.

    Each works once; five wrong codes void the mail. An account with a second factor is
    answered 202 with a challenge, as at login.
    """
    if data.get("token"):
        user = email_signin.redeem_link(token=data["token"])
    elif data.get("email") and data.get("code"):
        user = email_signin.redeem_code(email=data["email"], code=data["code"])
    else:
        raise errors.ValidationFailed(
            "Send the token, or the email and the code.",
            errors={"token": ["Give the token, or the email and the code."]},
        )
    result = signin.finish(user, client_info(), methods=["email"])
    return _signed_in(result, cookie=query["mode"] is TokenDelivery.COOKIE)
