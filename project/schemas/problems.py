"""The RFC 9457 problem document, for the OpenAPI description of errors."""

from marshmallow import Schema, fields


class ProblemSchema(Schema):
    """An RFC 9457 problem+json body; every error has this shape."""

    type = fields.String(required=True, metadata={"example": "urn:warden:problem:validation_error"})
    title = fields.String(required=True, metadata={"example": "Validation error"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(required=True, metadata={"example": "The input is invalid."})
    code = fields.String(required=True, metadata={"example": "validation_error"})
    request_id = fields.String(
        required=True, metadata={"example": "8f14e45fceea167a5a36dedd4bea2543"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "Messages per field (422 only)"},
    )
    retry_after = fields.Integer(metadata={"description": "Seconds to wait (login_throttled)"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "State of each dependency (not_ready)"},
    )
