"""Schemas for identity providers, linked identities and emailed sign-in."""

from marshmallow import Schema, fields, validate

from project.schemas.fields import MAX_EMAIL_LENGTH, TrimmedEmail

# Printable ASCII, as URLs and OAuth parameters are: a query within these lengths then
# fits gunicorn's request line (4094 bytes) however it is encoded.
ASCII = validate.Regexp(r"^[\x20-\x7e]*$", error="Printable ASCII only.")


def _ascii(maximum: int) -> list[validate.Validator]:
    return [validate.Length(max=maximum), ASCII]


class ProviderSchema(Schema):
    """An identity provider users can sign in with."""

    name = fields.String(required=True, metadata={"example": "google"})
    title = fields.String(required=True, metadata={"example": "Google"})
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["oidc", "github"]),
        metadata={"description": "`oidc` (OpenID Connect) or `github` (OAuth 2)"},
    )


class AuthorizeQuerySchema(Schema):
    """Where the browser returns after the provider."""

    return_to = fields.String(
        validate=_ascii(1000),
        metadata={
            "description": "URL on FRONTEND_URL's origin or SIGNIN_REDIRECT_ORIGINS"
            " (default FRONTEND_URL); gets `#code=` (sign-in) or `#linked=` (link)"
        },
    )
    link = fields.String(
        validate=_ascii(256),
        metadata={"description": "Ticket from POST /users/me/identities (link mode)"},
    )


class CallbackQuerySchema(Schema):
    """The provider's answer (RFC 6749 section 4.1.2); other parameters are ignored."""

    class Meta:
        unknown = "exclude"

    code = fields.String(validate=_ascii(1024))
    state = fields.String(validate=_ascii(256))
    error = fields.String(validate=_ascii(64))
    error_description = fields.String(validate=_ascii(512))
    iss = fields.String(validate=_ascii(512))


class SignInCodeSchema(Schema):
    """The single-use code a provider sign-in returned to the frontend with."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=128))


class AuthorizationUrlSchema(Schema):
    """Where to send the browser to link a provider."""

    authorization_url = fields.String(required=True)


class IdentitySchema(Schema):
    """An identity at a provider, linked to the account."""

    id = fields.UUID(required=True)
    provider = fields.String(required=True, metadata={"example": "github"})
    email = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)


class EmailSignInCodeSchema(Schema):
    """The mailed link's token, or the address and the mailed code."""

    token = fields.String(validate=validate.Length(min=1, max=128))
    email = TrimmedEmail(validate=validate.Length(max=MAX_EMAIL_LENGTH))
    code = fields.String(validate=validate.Regexp(r"^[0-9]{8}$"))


class LinkSchema(Schema):
    """The provider to link, and where the browser returns afterwards."""

    provider = fields.String(required=True, validate=validate.Length(min=1, max=32))
    return_to = fields.String(validate=_ascii(1000))
