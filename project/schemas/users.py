"""Schemas for users: the representation, updates and the admin list."""

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from project.core.security import same_password
from project.models import Role
from project.schemas.fields import MAX_EMAIL_LENGTH, Cursor, NewEmail, TrimmedString

PASSWORD = validate.Length(min=8, max=128)
# The service enforces it (it knows whether the account has a password): see services/users.
CONFIRMS = (
    "{} unless the account has no password; then omit it and use a session that signed in"
    " within STEP_UP_MAX_AGE seconds"
)


class UserSchema(Schema):
    """A user as the API shows it; never the password hash."""

    id = fields.UUID(required=True, dump_only=True)
    email = fields.Email(required=True, dump_only=True)
    full_name = fields.String(required=True, dump_only=True, allow_none=True)
    role = fields.Enum(Role, by_value=True, required=True, dump_only=True)
    is_active = fields.Boolean(required=True, dump_only=True)
    email_verified = fields.Boolean(required=True, dump_only=True)
    created_at = fields.DateTime(format="iso", required=True, dump_only=True)
    updated_at = fields.DateTime(format="iso", required=True, dump_only=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """A user's attribute by its plain name: no field here reads a dotted path or a
        dict key, which marshmallow's default looks for on each field of each user."""
        return getattr(obj, attr, default)


class ProfileUpdateSchema(Schema):
    """Fields a user may change on their own profile; a new email needs confirming."""

    full_name = TrimmedString(validate=validate.Length(max=200), allow_none=True)
    email = NewEmail(
        validate=validate.Length(max=MAX_EMAIL_LENGTH),
        metadata={"description": "Takes effect once confirmed from the new address"},
    )
    current_password = fields.String(
        load_only=True,
        validate=validate.Length(max=128),
        metadata={"description": CONFIRMS.format("To change the email: required")},
    )


class PasswordChangeSchema(Schema):
    """Change one's own password."""

    current_password = fields.String(
        load_only=True,
        validate=validate.Length(max=128),
        metadata={"description": CONFIRMS.format("Required")},
    )
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)

    @validates_schema
    def new_differs(self, data: dict[str, object], **_kwargs: object) -> None:
        """The new password must not be the current one."""
        # Keeping it would still end every other session and mail a change notice.
        new, current = data.get("new_password"), data.get("current_password")
        # Compared as they are hashed (core/security.py): NFKC, so no spelling slips past.
        if isinstance(new, str) and isinstance(current, str) and same_password(new, current):
            raise ValidationError("Must differ from the current password.", "new_password")


class AccountDeleteSchema(Schema):
    """Confirm deleting one's own account."""

    password = fields.String(
        load_only=True,
        validate=validate.Length(max=128),
        metadata={"description": CONFIRMS.format("Required")},
    )


class AdminUserUpdateSchema(Schema):
    """Fields an admin may change on any user."""

    full_name = TrimmedString(validate=validate.Length(max=200), allow_none=True)
    role = fields.Enum(Role, by_value=True)
    is_active = fields.Boolean()


class UserListQuerySchema(Schema):
    """Filters and paging for the admin user list."""

    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = Cursor(emails=True, metadata={"description": "next_cursor from the previous page"})
    role = fields.Enum(Role, by_value=True)
    is_active = fields.Boolean()
    email = TrimmedString(
        validate=validate.Length(min=1, max=MAX_EMAIL_LENGTH),
        metadata={"description": "Case-insensitive prefix of the email; pages in email order"},
    )

    @validates_schema
    def cursor_of_this_order(self, data: dict[str, object], **_kwargs: object) -> None:
        """A cursor continues the order it came from: email order exactly when filtering."""
        cursor = data.get("cursor")
        if cursor is not None and isinstance(cursor, str) != ("email" in data):
            raise ValidationError("This cursor belongs to a list in another order.", "cursor")


class UserPageSchema(Schema):
    """One page of users."""

    items = fields.Nested(UserSchema, many=True, required=True)
    next_cursor = Cursor(
        emails=True,
        attribute="next_key",
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null at the end"},
    )
