"""Schemas for passkeys (WebAuthn) and their ceremonies."""

from marshmallow import Schema, fields, validate

from project.schemas.fields import TrimmedString

NAME = validate.Length(min=1, max=100)
CREDENTIAL = {
    "description": "The PublicKeyCredential the browser returned, as JSON (its toJSON(): "
    "binary members base64url-encoded)",
}


class CeremonySchema(Schema):
    """A started passkey ceremony."""

    ceremony = fields.UUID(
        required=True, metadata={"description": "Send back with the browser's answer"}
    )
    options = fields.Dict(
        required=True,
        metadata={
            "description": "publicKey options for navigator.credentials.create() or .get(),"
            " binary members base64url-encoded (PublicKeyCredential.parse…OptionsFromJSON)"
        },
    )


class RegistrationSchema(Schema):
    """The authenticator's answer to a registration ceremony."""

    ceremony = fields.UUID(required=True)
    credential = fields.Dict(required=True, metadata=CREDENTIAL)
    name = TrimmedString(validate=NAME, metadata={"description": "Default: Passkey"})


class PasskeySchema(Schema):
    """A registered passkey (only public facts about it)."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    created_at = fields.DateTime(format="iso", required=True)
    last_used_at = fields.DateTime(format="iso", required=True, allow_none=True)
    transports = fields.List(fields.String(), required=True)
    aaguid = fields.String(
        required=True, allow_none=True, metadata={"description": "The authenticator's model"}
    )
    backed_up = fields.Boolean(
        required=True,
        metadata={"description": "Synced to a cloud account (a multi-device passkey)"},
    )


class PasskeyUpdateSchema(Schema):
    """A new name for a passkey."""

    name = TrimmedString(required=True, validate=NAME)


SECOND_FACTOR_CHALLENGE = {
    "description": "The challenge of a 202 login answer: the passkey is then its second factor"
}


class AuthenticationStartSchema(Schema):
    """Start a passkey sign-in: alone (discoverable), or as a login's second factor."""

    challenge = fields.String(
        validate=validate.Length(min=1, max=256), metadata=SECOND_FACTOR_CHALLENGE
    )


class AuthenticationSchema(Schema):
    """The authenticator's answer to a sign-in ceremony."""

    ceremony = fields.UUID(required=True)
    credential = fields.Dict(required=True, metadata=CREDENTIAL)
    challenge = fields.String(
        validate=validate.Length(min=1, max=256), metadata=SECOND_FACTOR_CHALLENGE
    )


class StepUpSchema(Schema):
    """The authenticator's answer to a step-up ceremony."""

    ceremony = fields.UUID(required=True)
    credential = fields.Dict(required=True, metadata=CREDENTIAL)
