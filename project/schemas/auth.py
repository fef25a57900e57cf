"""Schemas for registration, login and tokens."""

from marshmallow import Schema, fields, validate

from project.schemas.fields import TrimmedEmail, TrimmedString
from project.schemas.users import PASSWORD


class RegisterSchema(Schema):
    """A new account."""

    email = TrimmedEmail(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    full_name = TrimmedString(validate=validate.Length(max=200), allow_none=True)


class LoginSchema(Schema):
    """Credentials."""

    email = TrimmedEmail(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=128))


class TokenPairSchema(Schema):
    """Tokens issued by login and refresh."""

    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime in seconds"}
    )
