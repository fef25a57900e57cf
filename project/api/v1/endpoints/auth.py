"""Registration, login, refresh, logout and the caller's sessions."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify

from project.api.arguments import Blueprint
from project.api.auth import (
    auth_required,
    came_in_cookie,
    clear_cookies,
    client_info,
    current_session_id,
    current_token_id,
    current_user,
    current_user_id,
    deliver_tokens,
    device_cookie,
    read_csrf_cookies,
    refresh_token_required,
)
from project.api.ratelimits import (
    code_limit,
    email_limit,
    ends_sessions,
    login_limit,
    password_limit,
    refresh_limit,
    register_limit,
)
from project.core.settings import current_settings
from project.models import LogoutScope, User
from project.schemas.auth import (
    TOKENS_DOC,
    AcceptedSchema,
    CodeSchema,
    CsrfTokensSchema,
    EmailSchema,
    LoginQuerySchema,
    LoginSchema,
    LogoutQuerySchema,
    PasswordResetSchema,
    RegisterSchema,
    SecondFactorChallengeSchema,
    SecondFactorSchema,
    SessionSchema,
    TokenDelivery,
    TokenSchema,
)
from project.schemas.users import UserSchema
from project.services import assurance, auth, recovery, sessions, signin, verification
from project.services.sessions import ActiveSession
from project.services.signin import Challenge

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts, tokens, sessions")


@blp.route("/register", methods=["POST"])
@register_limit
@blp.arguments(
    RegisterSchema,
    example={
        "email": "ada@example.com",
        "password": "correct horse battery staple",
        "full_name": "Ada Lovelace",
    },
)
@blp.response(201, UserSchema)
@blp.alt_response(
    202, schema=AcceptedSchema, description="REGISTRATION_ENUMERATION_SAFE: new or taken alike"
)
@blp.alt_response(409, response="CONFLICT", description="`email_taken`")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="`weak_password`")
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`rate_limited`")
def register(data: dict[str, Any]) -> User | Response:
    """Create an account; a verification link is mailed to it.

    Registers a user with the role `user` and mails a verification link. Passwords are 8 to 128
    characters and must not be among the 100,000 most common breached passwords or contain the
    email's name. With REGISTRATION_ENUMERATION_SAFE the answer is 202 whether or not the
    address is taken.
    """
    user = auth.register(**data)
    if user is None or current_settings().REGISTRATION_ENUMERATION_SAFE:
        # A Response, which flask-smorest passes through: a (body, 202) pair would be
        # dumped with the 201 schema, UserSchema, and come out as {}.
        accepted = jsonify(AcceptedSchema().dump(ACCEPTED))
        accepted.status_code = 202
        return accepted
    return user


@blp.route("/login", methods=["POST"])
@login_limit
@blp.arguments(
    LoginSchema, example={"email": "ada@example.com", "password": "correct horse battery staple"}
)
@blp.arguments(LoginQuerySchema, location="query")
@blp.response(200, TOKENS_DOC)
@blp.alt_response(
    202,
    schema=SecondFactorChallengeSchema,
    description="The account has a second factor: answer the challenge at"
    " /auth/login/second-factor; no token yet",
)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(403, response="FORBIDDEN", description="`account_disabled`")
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`login_throttled`")
def login(data: dict[str, Any], query: dict[str, Any]) -> Response:
    """Log in with email and password; returns tokens, or sets cookies with ?mode=cookie.

    An account with a second factor is answered 202 with a short-lived, single-use
    `challenge` instead of tokens: post it with a code to /auth/login/second-factor.

    Checks the password and opens a session. Repeated failures lock the device (one that holds
    a device token from an earlier login) or the (account, address) pair, and failures from
    unknown devices lock the account for all of them: 429 `login_throttled` with a
    Retry-After. A device token passes that account-wide lock; an unknown device refused by
    it makes Warden mail the owner an unlock link, whose token is sent as `unlock_token`.
    Unknown emails are answered exactly like wrong passwords.
    """
    signed_in = auth.login(
        email=data["email"],
        password=data["password"],
        client=client_info(),
        device_token=data.get("device_token") or device_cookie(),
        unlock_token=data.get("unlock_token"),
    )
    if isinstance(signed_in, Challenge):
        return challenge_response(signed_in)
    return deliver_tokens(
        signed_in.tokens,
        cookie=query["mode"] is TokenDelivery.COOKIE,
        device_token=signed_in.device_token,
    )


def challenge_response(challenge: Challenge) -> Response:
    """The 202 answer of a sign-in that needs a second factor."""
    # A Response, which flask-smorest passes through (the 200 schema would dump it).
    answer = jsonify(SecondFactorChallengeSchema().dump(challenge))
    answer.status_code = 202
    return answer


@blp.route("/login/second-factor", methods=["POST"])
@code_limit
@blp.arguments(SecondFactorSchema, example={"challenge": "q3Zl…", "code": "123456"})
@blp.arguments(LoginQuerySchema, location="query")
@blp.response(200, TOKENS_DOC)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_challenge`, `invalid_code`")
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`second_factor_throttled`")
def login_second_factor(data: dict[str, Any], query: dict[str, Any]) -> Response:
    """Answer a login's challenge with a TOTP or recovery code; returns tokens like login.

    Trades the challenge from a 202 login and a six-digit code from the authenticator app
    (or an unused recovery code) for the token pair, delivered as login delivers it. A code
    works once; five codes on one challenge end it (401 `invalid_challenge`), and wrong codes
    are throttled per account (429 `second_factor_throttled`).
    """
    signed_in = signin.answer(challenge=data["challenge"], code=data["code"], client=client_info())
    return deliver_tokens(
        signed_in.tokens,
        cookie=query["mode"] is TokenDelivery.COOKIE,
        device_token=signed_in.device_token,
    )


@blp.route("/step-up", methods=["POST"])
@code_limit
@auth_required
@blp.arguments(CodeSchema, example={"code": "123456"})
@blp.response(204)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_code`")
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`second_factor_throttled`")
def step_up(data: dict[str, Any]) -> None:
    """Prove the second factor again for this session, before a sensitive change.

    A valid code marks this session as having passed a second factor now: for
    STEP_UP_MAX_AGE seconds it may change the password or email, remove a factor or delete
    the account (otherwise 403 `step_up_required`). Refresh for access tokens whose `amr`
    and `auth_time` say so.
    """
    assurance.step_up(user_id=current_user.id, session_id=current_session_id(), code=data["code"])


@blp.route("/refresh", methods=["POST"])
@refresh_limit
@refresh_token_required
@blp.response(200, TOKENS_DOC)
@blp.alt_response(429, response="TOO_MANY_REQUESTS", description="`rate_limited`")
def refresh() -> Response:
    """Trade the refresh token (Bearer or cookie) for a new pair; the old one stops working.

    Send the refresh token as Bearer (or the refresh cookie with X-CSRF-TOKEN). The token is
    rotated: presenting an already-rotated one again ends the whole session (401
    `refresh_token_reused`).
    """
    pair = auth.refresh(
        user_id=current_user_id(),
        session_id=current_session_id(),
        jti=current_token_id(),
        client=client_info(),
    )
    return deliver_tokens(pair, cookie=came_in_cookie())


@blp.route("/logout", methods=["POST"])
@ends_sessions
@auth_required
@blp.arguments(LogoutQuerySchema, location="query")
@blp.response(204)
def logout(query: dict[str, Any]) -> None:
    """End this session (`local`), every other one (`others`) or all of them (`global`).

    Ends sessions at once on every instance: their access tokens are refused on the next request
    and their refresh tokens stop working. Cookie mode also clears the cookies.
    """
    sessions.logout(user_id=current_user.id, session_id=current_session_id(), scope=query["scope"])
    # "others" keeps this session, so this browser keeps its cookies.
    if came_in_cookie() and query["scope"] is not LogoutScope.OTHERS:
        clear_cookies()


@blp.route("/sessions", methods=["GET"])
@auth_required
@blp.response(200, SessionSchema(many=True))
def list_sessions() -> list[ActiveSession]:
    """List the caller's active sessions, newest first.

    One entry per login, with where it was last used from, how (`amr`) and when (`auth_time`)
    it was authenticated; `current` marks the session of this request.
    """
    return sessions.list_sessions(user_id=current_user.id, current_session_id=current_session_id())


@blp.route("/sessions/<uuid:session_id>", methods=["DELETE"])
@ends_sessions
@auth_required
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def revoke_session(session_id: uuid.UUID) -> None:
    """End one of the caller's sessions.

    Ends a session of the caller; another user's session id is answered with 404.
    """
    sessions.revoke_session(user_id=current_user.id, session_id=session_id)


ACCEPTED = {"detail": "If the address can be used, a mail is on its way."}


@blp.route("/verify-email", methods=["POST"])
@email_limit
@blp.arguments(TokenSchema, example={"token": "kR3v6Zt0Jq9aXc1mW8yB2uN5pL7sD4fG0hE6iO3rT9k"})
@blp.response(204)
@blp.alt_response(400, response="BAD_REQUEST", description="`invalid_token`")
@blp.alt_response(409, response="CONFLICT", description="`email_taken` (email change)")
def verify_email(data: dict[str, Any]) -> None:
    """Confirm an address with the token from a verification or email-change mail.

    Redeems the token mailed at registration, on resend, or for an email change. Tokens work
    once; wrong, used and expired tokens all get 400 `invalid_token`.
    """
    verification.verify(token=data["token"])


@blp.route("/verify-email/resend", methods=["POST"])
@email_limit
@blp.arguments(EmailSchema, example={"email": "ada@example.com"})
@blp.response(202, AcceptedSchema)
def resend_verification(data: dict[str, Any]) -> dict[str, str]:
    """Mail a new verification link; the answer is the same for every address.

    Always 202: the answer does not reveal whether the address has an account. A new link voids
    the previous one.
    """
    verification.request_resend(email=data["email"])
    return ACCEPTED


@blp.route("/password/forgot", methods=["POST"])
@email_limit
@blp.arguments(EmailSchema, example={"email": "ada@example.com"})
@blp.response(202, AcceptedSchema)
def forgot_password(data: dict[str, Any]) -> dict[str, str]:
    """Mail a password reset link; the answer is the same for every address.

    Always 202, with the same work done for known and unknown addresses; the lookup and the mail
    happen off the request path. The link is valid for RESET_TOKEN_TTL seconds (1 hour).
    """
    recovery.request_reset(email=data["email"])
    return ACCEPTED


@blp.route("/password/reset", methods=["POST"])
@password_limit
@blp.arguments(
    PasswordResetSchema,
    example={
        "token": "kR3v6Zt0Jq9aXc1mW8yB2uN5pL7sD4fG0hE6iO3rT9k",
        "new_password": "a new long passphrase",
    },
)
@blp.response(204)
@blp.alt_response(400, response="BAD_REQUEST", description="`invalid_token`")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="`weak_password`")
def reset_password(data: dict[str, Any]) -> None:
    """Set a new password with the token from a reset mail; every session ends.

    Sets a new password with the mailed token. Every session of the user ends, outstanding links
    are voided, and a notice is mailed.
    """
    recovery.reset_password(token=data["token"], new_password=data["new_password"])


@blp.route("/csrf", methods=["GET"])
@blp.response(200, CsrfTokensSchema)
def csrf_tokens() -> dict[str, str | None]:
    """Cookie mode: read the CSRF tokens again, e.g. after a page reload.

    For a browser page that reloaded in cookie mode: returns the CSRF values of its cookies
    (null outside cookie mode). Only origins in CORS_ORIGINS can read the answer.
    """
    return read_csrf_cookies()
