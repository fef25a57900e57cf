"""Authentication: JWT callbacks in the problem shape, and route decorators."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from http import HTTPStatus
from typing import Any, TypeVar, cast

from flask import Response, after_this_request, current_app, g, jsonify, request
from flask_jwt_extended import (
    JWTManager,
    get_csrf_token,
    get_jwt,
    get_jwt_request_location,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from werkzeug.local import LocalProxy

from project.api.errors import problem_response
from project.api.openapi import CREDENTIAL
from project.api.ratelimits import CHECKS_ACCESS_TOKEN, bearer_token, counts_per_account
from project.compat import document_operation
from project.core import context, errors
from project.core.keys import KeySet
from project.core.settings import current_settings
from project.core.tokens import TokenPair
from project.core.verified_tokens import CACHE_KEY, VerifiedTokenCache
from project.models import User
from project.schemas.auth import BearerTokensSchema, CookieTokensSchema
from project.services import access
from project.services.access import claimed_ids
from project.services.client import ClientInfo
from project.services.factors import proves_second_factor

# The cookie that holds a browser's device token (see project.services.throttle).
DEVICE_COOKIE = "warden_device"

F = TypeVar("F", bound=Callable[..., Any])
# Built once: a schema instance holds no per-dump state, and building one costs about as
# much as the dump itself on every login and refresh.
BEARER_TOKENS = BearerTokensSchema()
COOKIE_TOKENS = CookieTokensSchema()
TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def authenticated_user() -> User:
    """The user of the request's verified access token (set by the session check)."""
    return cast(User, g.authenticated_user)


current_user: User = cast(User, LocalProxy(authenticated_user))


def key_set() -> KeySet | None:
    """The app's asymmetric key set, or None when tokens are HS256."""
    keys: KeySet | None = current_app.extensions.get("warden.keys")
    return keys


def register_jwt_callbacks(jwt: JWTManager) -> None:
    """Make flask-jwt-extended check sessions and answer in the problem shape."""

    @jwt.encode_key_loader
    def encode_key(_identity: object) -> Any:
        keys = key_set()
        return keys.signing_key() if keys else current_app.config["JWT_SECRET_KEY"]

    @jwt.decode_key_loader
    def decode_key(header: dict[str, Any], _payload: dict[str, Any]) -> Any:
        keys = key_set()
        return (
            keys.verification_key(header.get("kid"))
            if keys
            else current_app.config["JWT_SECRET_KEY"]
        )

    @jwt.additional_headers_loader
    def headers(_identity: object) -> dict[str, str]:
        keys = key_set()
        return {"kid": keys.current_kid} if keys else {}

    @jwt.expired_token_loader
    def expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(errors.TokenExpired("The token has expired."))

    @jwt.invalid_token_loader
    def invalid(reason: str) -> Response:
        return problem_response(errors.InvalidToken(reason))

    @jwt.unauthorized_loader
    def missing(reason: str) -> Response:
        return problem_response(errors.AuthorizationRequired(reason))

    @jwt.revoked_token_loader
    @jwt.user_lookup_error_loader
    def revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        # The session check says why: ended, or voided by a security change.
        return problem_response(
            errors.TokenRevoked(g.get("revoked_because") or "This session has ended.")
        )

    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        try:
            check_session(payload)
        except errors.TokenRevoked as exc:
            g.revoked_because = exc.detail
            return True
        return False

    @jwt.user_lookup_loader
    def load_user(_header: dict[str, Any], payload: dict[str, Any]) -> User | str | None:
        if payload.get("type") == "refresh":
            # The rotation checks and loads a refresh token's user (services.auth.refresh).
            return str(payload["sub"])
        return cast(User | None, g.get("authenticated_user"))


def check_session(claims: dict[str, Any]) -> None:
    """Check the session of a verified access token and make its user the request's.

    Raises TokenRevoked (and forgets a header token, so its next use is counted per IP
    again, api/ratelimits.py) or RateLimited.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    try:
        user = access.check(claims, count=counts_per_account(view))
    except errors.TokenRevoked:
        token = bearer_token()
        if token is not None:
            current_app.extensions[CACHE_KEY].forget(token)
        raise
    g.authenticated_user = user
    context.bind(user_id=str(user.id))


def verify_access_token() -> None:
    """Verify the request's access token and check its session.

    A Bearer access token this worker verified before is taken from its cache: the header
    is where flask-jwt-extended looks first (JWT_TOKEN_LOCATION), and the signature, type
    and claims were checked when it was cached. Any other token goes through
    flask-jwt-extended in full (cookies, CSRF, signature), whose blocklist callback runs
    the same session check.
    """
    token = bearer_token()
    verified: VerifiedTokenCache = current_app.extensions[CACHE_KEY]
    claims = verified.get(token, None) if token is not None else None
    if claims is None or claims.get("type") != "access":
        verify_jwt_in_request()
        _keep_claims(get_jwt(), get_jwt_request_location())
        return
    check_session(claims)
    _keep_claims(claims, "headers")


def _keep_claims(claims: dict[str, Any], location: str | None) -> None:
    state = g._get_current_object()
    state.token_claims = claims
    state.token_location = location


def current_claims() -> dict[str, Any]:
    """The claims of the request's verified token."""
    return cast(dict[str, Any], g.token_claims)


def _document(view: Callable[..., Any], *statuses: int, credential: str) -> None:
    """Name the token ``view`` needs (``route`` documents the security requirement from it)
    and add its error responses to the OpenAPI doc."""
    setattr(view, CREDENTIAL, credential)
    document_operation(view, responses={status: HTTPStatus(status).name for status in statuses})


def auth_required(view: F) -> F:
    """Require a valid access token of an active session."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_access_token()
        return view(*args, **kwargs)

    setattr(wrapper, CHECKS_ACCESS_TOKEN, True)
    _document(wrapper, 401, 403, 429, credential="access")
    return cast(F, wrapper)


def admin_required(view: F) -> F:
    """Require an access token of an active admin."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_access_token()
        if not current_user.is_admin:
            raise errors.Forbidden("This operation needs the admin role.")
        if current_settings().ADMIN_REQUIRE_SECOND_FACTOR and not proves_second_factor(
            current_claims().get("amr") or ["pwd"]
        ):
            raise errors.SecondFactorRequired(
                "Admin operations need a session that passed a second factor."
            )
        return view(*args, **kwargs)

    setattr(wrapper, CHECKS_ACCESS_TOKEN, True)
    _document(wrapper, 401, 403, 429, credential="access")
    return cast(F, wrapper)


def refresh_token_required(view: F) -> F:
    """Require a validly signed refresh token (an access token is refused).

    Whether its session is live and its user active is left to the view's use case, whose
    conditional rotation checks both in the statement that rotates the token.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request(refresh=True, skip_revocation_check=True)
        _keep_claims(get_jwt(), get_jwt_request_location())
        # Parsing the ids and the token id here answers a malformed one with 401 before the
        # view runs (the rotation would hand a bad jti to the database).
        context.bind(user_id=str(current_user_id()))
        current_token_id()
        return view(*args, **kwargs)

    _document(wrapper, 401, 403, credential="refresh")
    return cast(F, wrapper)


def current_user_id() -> uuid.UUID:
    """Return the user id carried by the verified token."""
    return claimed_ids(current_claims())[0]


def current_session_id() -> uuid.UUID:
    """Return the session id carried by the verified token."""
    return claimed_ids(current_claims())[1]


def current_token_id() -> str:
    """Return the ``jti`` of the verified token; one Warden never issues names no session."""
    jti = current_claims().get("jti")
    # Warden issues UUIDs; the column holds 64 characters and PostgreSQL text no NUL.
    if not isinstance(jti, str) or not TOKEN_ID.fullmatch(jti):
        raise errors.TokenRevoked("This session has ended.")
    return jti


def came_in_cookie() -> bool:
    """Whether the verified token was read from a cookie (browser mode)."""
    return bool(g.get("token_location") == "cookies")


def device_cookie() -> str | None:
    """The device token a browser holds from an earlier login, if any."""
    return request.cookies.get(DEVICE_COOKIE)


def _set_device_cookie(device_token: str) -> None:
    @after_this_request
    def set_cookie(response: Response) -> Response:
        settings = current_settings()
        # Sent only to the login route it came from, and never readable by scripts.
        response.set_cookie(
            DEVICE_COOKIE,
            device_token,
            max_age=settings.LOGIN_DEVICE_TTL,
            path=request.path,
            domain=settings.COOKIE_DOMAIN,
            secure=settings.COOKIE_SECURE,
            httponly=True,
            samesite=settings.COOKIE_SAMESITE,
        )
        return response


def deliver_tokens(pair: TokenPair, *, cookie: bool, device_token: str | None = None) -> Response:
    """The answer to a token request; in cookie mode it sets HttpOnly cookies instead.

    A login also hands out a device token: in a cookie, and in a Bearer body for clients
    without cookies, which send it back as ``device_token``.
    """
    if device_token is not None:
        _set_device_cookie(device_token)
    if not cookie:
        values: dict[str, object] = asdict(pair)
        if device_token is not None:
            values["device_token"] = device_token
        return jsonify(BEARER_TOKENS.dump(values))

    @after_this_request
    def set_cookies(response: Response) -> Response:
        refresh_ttl = current_settings().REFRESH_TOKEN_TTL
        # The cookie outlives its token, so an expired one is answered 401 token_expired
        # (the signal to refresh) rather than silently vanishing from the browser.
        set_access_cookies(response, pair.access_token, max_age=refresh_ttl)
        set_refresh_cookies(response, pair.refresh_token, max_age=refresh_ttl)
        return response

    values = {
        "token_type": "Cookie",
        "expires_in": pair.expires_in,
        "csrf_token": get_csrf_token(pair.access_token),
        "refresh_csrf_token": get_csrf_token(pair.refresh_token),
    }
    return jsonify(COOKIE_TOKENS.dump(values))


def read_csrf_cookies() -> dict[str, str | None]:
    """The double-submit values of the browser's cookies (None outside cookie mode).

    Only origins in CORS_ORIGINS may read this response, so another site cannot learn them.
    """
    config = current_app.config
    return {
        "csrf_token": request.cookies.get(config["JWT_ACCESS_CSRF_COOKIE_NAME"]),
        "refresh_csrf_token": request.cookies.get(config["JWT_REFRESH_CSRF_COOKIE_NAME"]),
    }


def clear_cookies() -> None:
    """Remove the token cookies from the browser with this response."""

    @after_this_request
    def unset(response: Response) -> Response:
        unset_jwt_cookies(response)
        return response


def client_info() -> ClientInfo:
    """Describe the calling client for the services, as the request hooks recorded it."""
    bound = context.current()
    return ClientInfo(ip=bound.ip, user_agent=bound.user_agent)
