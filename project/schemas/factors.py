"""Schemas for second factors: authenticator apps and recovery codes."""

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from project.schemas.auth import CODE


class TotpStartSchema(Schema):
    """A new authenticator app, confirmed by the password (a stolen token cannot add one)."""

    password = fields.String(
        load_only=True,
        validate=validate.Length(max=128),
        metadata={"description": "Required unless the account has no password (see above)"},
    )
    label = fields.String(
        validate=validate.Length(max=64),
        allow_none=True,
        metadata={"description": "A name for the app, e.g. the phone it is on"},
    )


class EnrolmentSchema(Schema):
    """What the authenticator app needs; the secret is never shown again."""

    id = fields.UUID(required=True)
    secret = fields.String(
        required=True, metadata={"description": "Base32 secret, for typing into the app"}
    )
    otpauth_uri = fields.String(
        required=True, metadata={"description": "The otpauth:// URI the QR code encodes"}
    )
    qr_svg = fields.String(required=True, metadata={"description": "The URI as an SVG QR code"})


class RecoveryCodesSchema(Schema):
    """Ten single-use recovery codes, shown this once."""

    recovery_codes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Each works once in place of an authenticator code"},
    )


class FactorSchema(Schema):
    """An authenticator app (never its secret)."""

    id = fields.UUID(required=True)
    type = fields.String(required=True, metadata={"enum": ["totp"]})
    label = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(format="iso", required=True)
    confirmed_at = fields.DateTime(format="iso", required=True, allow_none=True)
    active = fields.Boolean(
        required=True, metadata={"description": "Confirmed with a code; pending otherwise"}
    )


class FactorListSchema(Schema):
    """The caller's authenticator apps and recovery codes left."""

    factors = fields.List(fields.Nested(FactorSchema), required=True)
    recovery_codes_left = fields.Integer(required=True)


class FactorRemoveSchema(Schema):
    """Proof of presence for removing an active factor: the password or a current code."""

    password = fields.String(load_only=True, validate=validate.Length(max=128))
    code = fields.String(load_only=True, validate=CODE)

    @validates_schema
    def one_proof(self, data: dict[str, Any], **_: Any) -> None:
        """Refuse both at once: one proof is asked for."""
        if "password" in data and "code" in data:
            raise ValidationError("Send the password or a code, not both.", "code")
