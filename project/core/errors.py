"""Every problem the API can report, each with a stable ``code`` (the error registry)."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """A failure with an HTTP status and a stable snake_case code for clients."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    description: ClassVar[str] = "An unexpected error; nothing internal is revealed."
    registry: ClassVar[list[type[AppError]]] = []
    # What the catalogue shows as the status, where it is not one fixed number.
    status_text: ClassVar[str | None] = None
    # The WWW-Authenticate challenge a 401 about a bearer token carries (RFC 6750).
    challenge: ClassVar[str | None] = None

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        AppError.registry.append(cls)


AppError.registry.append(AppError)


def error(
    code: str,
    status: int,
    title: str,
    description: str,
    *,
    status_text: str | None = None,
    challenge: str | None = None,
) -> type[AppError]:
    """Define and register an AppError subclass."""
    name = "".join(part.title() for part in code.split("_")) + "Error"
    attrs = {
        "code": code,
        "status": status,
        "title": title,
        "description": description,
        "status_text": status_text,
        "challenge": challenge,
    }
    return type(name, (AppError,), attrs)


# RFC 6750 challenges: no token came, or the one that came was refused.
MISSING_TOKEN = 'Bearer realm="warden"'
REFUSED_TOKEN = 'Bearer realm="warden", error="invalid_token"'


BadRequest = error("bad_request", 400, "Bad request", "The request could not be understood.")
HttpError = error(
    "http_error",
    400,
    "HTTP error",
    "Another protocol-level error (e.g. 406, 410, 428); `status` carries the real status.",
    status_text="4xx (the real one)",
)
InvalidJson = error("invalid_json", 400, "Malformed JSON", "The body is not valid JSON.")
InvalidCredentials = error(
    "invalid_credentials",
    401,
    "Invalid credentials",
    "The email or password is wrong (unknown emails get the same answer).",
)
AuthorizationRequired = error(
    "authorization_required",
    401,
    "Authorization required",
    "The request carries no token where one is needed.",
    challenge=MISSING_TOKEN,
)
InvalidToken = error(
    "invalid_token",
    401,
    "Invalid token",
    "The token is malformed, badly signed, signed by an unknown key, or of the wrong type.",
    challenge=REFUSED_TOKEN,
)
InvalidOneTimeToken = error(
    "invalid_token",
    400,
    "Invalid token",
    "A one-time token (email verification, password reset, email change) is wrong, used "
    "or expired; which one is not said.",
)
TokenExpired = error(
    "token_expired",
    401,
    "Token expired",
    "The token's lifetime is over.",
    challenge=REFUSED_TOKEN,
)
TokenRevoked = error(
    "token_revoked",
    401,
    "Token revoked",
    "The session ended, the user is gone or disabled, or a security change voided the token.",
    challenge=REFUSED_TOKEN,
)
RefreshTokenReused = error(
    "refresh_token_reused",
    401,
    "Refresh token reused",
    "A refresh token was presented again after rotation; the whole session was revoked.",
    challenge=REFUSED_TOKEN,
)
PasskeyRefused = error(
    "passkey_refused",
    401,
    "Passkey refused",
    "The passkey sign-in could not be verified: unknown passkey, wrong origin or relying party,"
    " bad signature, or no user verification; which one is not said.",
)
PasskeyCloneSuspected = error(
    "passkey_clone_suspected",
    401,
    "Passkey counter went back",
    "The authenticator's signature counter did not advance past the one last seen: it may be"
    " a copy of the passkey. Sign-in is refused and the event audited.",
)
InvalidChallenge = error(
    "invalid_challenge",
    401,
    "Invalid sign-in challenge",
    "The sign-in challenge is unknown, expired, used, or ended by five wrong codes; sign in again.",
)
InvalidCode = error(
    "invalid_code",
    401,
    "Invalid code",
    "The authenticator or recovery code is wrong, or was used already.",
)
AccountDisabled = error(
    "account_disabled", 403, "Account disabled", "The account was deactivated by an admin."
)
Forbidden = error("forbidden", 403, "Forbidden", "The caller may not do this.")
EmailNotVerified = error(
    "email_not_verified",
    403,
    "Email not verified",
    "REQUIRE_VERIFIED_EMAIL is on and the account's address is not confirmed yet.",
)
CsrfFailed = error(
    "csrf_failed",
    403,
    "CSRF check failed",
    "A cookie-authenticated unsafe request lacks a matching X-CSRF-TOKEN header.",
)
InvalidCeremony = error(
    "invalid_ceremony",
    400,
    "Invalid passkey ceremony",
    "The passkey ceremony is unknown, already answered or expired; start again.",
)
PasskeyInvalid = error(
    "passkey_invalid",
    400,
    "Passkey not verified",
    "The new passkey's response could not be verified (wrong origin or relying party, no user"
    " verification, malformed).",
)
StepUpRequired = error(
    "step_up_required",
    403,
    "Step-up required",
    "The account has a second factor and this session did not prove one within"
    " STEP_UP_MAX_AGE seconds; prove it (POST /auth/step-up) and retry.",
)
ReauthenticationRequired = error(
    "reauthentication_required",
    403,
    "Sign in again",
    "The account has no password and this session did not sign in within STEP_UP_MAX_AGE"
    " seconds: sign in again (with the identity provider or an emailed link) and retry with"
    " the new session.",
)
SecondFactorRequired = error(
    "second_factor_required",
    403,
    "Second factor required",
    "ADMIN_REQUIRE_SECOND_FACTOR is on and this admin session did not pass a second factor.",
)
NotFound = error("not_found", 404, "Not found", "No such resource.")
MethodNotAllowed = error(
    "method_not_allowed", 405, "Method not allowed", "The resource does not support this method."
)
EmailTaken = error("email_taken", 409, "Email taken", "An account with this email exists.")
PasskeyExists = error(
    "passkey_exists", 409, "Passkey exists", "This passkey is registered already."
)
LastAdmin = error(
    "last_admin",
    409,
    "Last admin",
    "The change would leave the service without an active admin.",
)
Conflict = error("conflict", 409, "Conflict", "The request conflicts with the current state.")
PayloadTooLarge = error(
    "payload_too_large", 413, "Payload too large", "The body exceeds the size limit (64 KiB)."
)
UnsupportedMediaType = error(
    "unsupported_media_type",
    415,
    "Unsupported media type",
    "The body must be sent as application/json.",
)
ValidationFailed = error(
    "validation_error",
    422,
    "Validation error",
    "The input is invalid; `errors` lists the messages per field.",
)
WeakPassword = error(
    "weak_password",
    422,
    "Weak password",
    "The password is among the 100,000 most common breached passwords or contains the "
    "email's name; `errors` says which. (Length is checked earlier: validation_error.)",
)
RateLimited = error(
    "rate_limited",
    429,
    "Too many requests",
    "A rate limit was exceeded; `Retry-After` says when to try again.",
)
LoginThrottled = error(
    "login_throttled",
    429,
    "Login throttled",
    "Too many failed logins for this account, device or address; `Retry-After` says when to"
    " try again. A device that signed in before passes an account-wide lock; refused unknown"
    " devices make Warden mail the owner an unlock link.",
)
SecondFactorThrottled = error(
    "second_factor_throttled",
    429,
    "Second factor throttled",
    "Too many wrong codes for this account; `Retry-After` says when to try again.",
)
HashingBusy = error(
    "hashing_busy",
    503,
    "Busy checking passwords",
    "Every password-hashing slot is in use; `Retry-After` says when to try again.",
)
NotReady = error(
    "not_ready", 503, "Service not ready", "A dependency check failed; `checks` says which."
)
ServiceUnavailable = error(
    "service_unavailable", 503, "Service unavailable", "A dependency is unreachable; retry later."
)
InvalidRedirect = error(
    "invalid_redirect",
    400,
    "Redirect not allowed",
    "The return address is not FRONTEND_URL's origin or one of SIGNIN_REDIRECT_ORIGINS.",
)
SignInFlowInvalid = error(
    "sign_in_flow_invalid",
    400,
    "Sign-in flow invalid",
    "The provider's answer does not belong to a sign-in this browser started (state missing,"
    " wrong, used or expired); start again.",
)
ProviderRefused = error(
    "provider_refused",
    400,
    "Provider refused",
    "The identity provider refused the sign-in or the code exchange.",
)
InvalidIdToken = error(
    "invalid_id_token",
    401,
    "Invalid ID token",
    "The provider's ID token failed a check: signature, issuer, audience, expiry or nonce.",
)
ProviderEmailUnverified = error(
    "provider_email_unverified",
    403,
    "Email not verified by the provider",
    "The provider gave no verified email address, which a new account needs.",
)
IdentityLinkRequired = error(
    "identity_link_required",
    409,
    "Sign in to link",
    "An account already uses this address: sign in to it, then link the provider from there.",
)
IdentityTaken = error(
    "identity_taken", 409, "Identity taken", "This provider identity belongs to another account."
)
LastSignInMethod = error(
    "last_sign_in_method",
    409,
    "Last way to sign in",
    "The account has no password and no other identity: this one cannot be unlinked.",
)
ProviderUnavailable = error(
    "provider_unavailable",
    503,
    "Provider unavailable",
    "The identity provider did not answer in time; try again.",
)
