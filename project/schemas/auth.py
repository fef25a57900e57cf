"""Schemas for registration, login, tokens and sessions.

In schemas the API answers with, ``required=True`` marks each field the answer always holds
(marshmallow ignores it when dumping), so generated clients type it as present.
"""

import enum

from marshmallow import Schema, fields, validate

from project.models import LogoutScope
from project.schemas.fields import MAX_EMAIL_LENGTH, NewEmail, TrimmedEmail, TrimmedString
from project.schemas.users import PASSWORD


class TokenDelivery(enum.StrEnum):
    """Where login puts the tokens: the JSON body (Bearer) or HttpOnly cookies."""

    BEARER = "bearer"
    COOKIE = "cookie"


class RegisterSchema(Schema):
    """A new account."""

    email = NewEmail(required=True, validate=validate.Length(max=MAX_EMAIL_LENGTH))
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    full_name = TrimmedString(validate=validate.Length(max=200), allow_none=True)


class LoginSchema(Schema):
    """Credentials."""

    email = TrimmedEmail(required=True, validate=validate.Length(max=MAX_EMAIL_LENGTH))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=128))
    device_token = fields.String(
        load_only=True,
        validate=validate.Length(max=256),
        metadata={"description": "From an earlier login, for clients without the device cookie"},
    )
    unlock_token = fields.String(
        load_only=True,
        validate=validate.Length(max=256),
        metadata={"description": "From a mailed unlock link: passes an account-wide lock"},
    )


class LoginQuerySchema(Schema):
    """How the tokens are delivered."""

    mode = fields.Enum(
        TokenDelivery,
        by_value=True,
        load_default=TokenDelivery.BEARER,
        metadata={"description": "`cookie` sets HttpOnly cookies for browser frontends"},
    )


class BearerTokensSchema(Schema):
    """Tokens issued by login and refresh."""

    access_token = fields.String(
        required=True, metadata={"description": "Send as `Authorization: Bearer …`"}
    )
    refresh_token = fields.String(
        required=True, metadata={"description": "Post to /auth/refresh for a new pair; works once"}
    )
    token_type = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime in seconds"}
    )
    device_token = fields.String(
        metadata={
            "description": "Login only: send back as `device_token` on later logins from this"
            " client, so others' failures do not lock it out"
        }
    )


class CookieTokensSchema(Schema):
    """Cookie mode: the tokens went into HttpOnly cookies; these are their CSRF values."""

    token_type = fields.String(required=True, metadata={"enum": ["Cookie"]})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime in seconds"}
    )
    csrf_token = fields.String(
        required=True, metadata={"description": "Send as X-CSRF-TOKEN on unsafe requests"}
    )
    refresh_csrf_token = fields.String(
        required=True, metadata={"description": "Send as X-CSRF-TOKEN when refreshing"}
    )


# Login and refresh answer in one shape or the other, told apart by token_type. A schema
# class inside the dict is resolved to its component by apispec.
TOKENS_DOC = {
    "oneOf": [BearerTokensSchema, CookieTokensSchema],
    "discriminator": {
        "propertyName": "token_type",
        "mapping": {
            "Bearer": "#/components/schemas/BearerTokens",
            "Cookie": "#/components/schemas/CookieTokens",
        },
    },
}


class LogoutQuerySchema(Schema):
    """Which sessions to end."""

    scope = fields.Enum(
        LogoutScope,
        by_value=True,
        load_default=LogoutScope.LOCAL,
        metadata={"description": "`local`: this session; `others`; `global`: all"},
    )


FACTOR_KINDS = ["totp", "recovery", "webauthn"]
AMR_VALUES = ["pwd", "otp", "recovery", "webauthn", "oidc", "email"]


class SecondFactorChallengeSchema(Schema):
    """The first factor passed; answer this challenge with a second one for the tokens."""

    challenge = fields.String(
        required=True,
        metadata={"description": "Send to /auth/login/second-factor with a code; works once"},
    )
    expires_in = fields.Integer(
        required=True, metadata={"description": "Seconds left to answer (SIGN_IN_CHALLENGE_TTL)"}
    )
    factors = fields.List(
        fields.String(metadata={"enum": FACTOR_KINDS}),
        required=True,
        metadata={"description": "The kinds of second factor the account can answer with"},
    )


CODE = validate.Length(min=1, max=64)


class SecondFactorSchema(Schema):
    """A challenge from login and a code that answers it."""

    challenge = fields.String(required=True, validate=validate.Length(min=1, max=128))
    code = fields.String(
        required=True,
        load_only=True,
        validate=CODE,
        metadata={"description": "Six digits from the authenticator app, or a recovery code"},
    )


class CodeSchema(Schema):
    """A code from the authenticator app, or a recovery code."""

    code = fields.String(required=True, load_only=True, validate=CODE)


class SessionSchema(Schema):
    """A live login session."""

    id = fields.UUID(required=True)
    created_at = fields.DateTime(format="iso", required=True)
    last_used_at = fields.DateTime(format="iso", required=True)
    ip = fields.String(required=True, allow_none=True)
    user_agent = fields.String(required=True, allow_none=True)
    current = fields.Boolean(
        required=True, metadata={"description": "The session making this request"}
    )
    amr = fields.List(
        fields.String(metadata={"enum": AMR_VALUES}),
        required=True,
        metadata={"description": "How the session was authenticated (RFC 8176 style)"},
    )
    auth_time = fields.DateTime(
        format="iso",
        required=True,
        metadata={"description": "When a factor was last proved for the session"},
    )


class EmailSchema(Schema):
    """An email address to act on."""

    email = TrimmedEmail(required=True, validate=validate.Length(max=MAX_EMAIL_LENGTH))


class TokenSchema(Schema):
    """A one-time token from a mailed link."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=128))


class PasswordResetSchema(Schema):
    """A reset token and the new password."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=128))
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)


class AcceptedSchema(Schema):
    """Accepted for processing; the outcome arrives by email."""

    detail = fields.String(
        required=True, metadata={"example": "If the address can be used, a mail is on its way."}
    )


class CsrfTokensSchema(Schema):
    """The CSRF tokens of the current cookie session."""

    csrf_token = fields.String(required=True, allow_none=True)
    refresh_csrf_token = fields.String(required=True, allow_none=True)
