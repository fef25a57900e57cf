"""The caller's second factors: authenticator apps and recovery codes."""

from __future__ import annotations

import uuid
from typing import Any

from project.api.arguments import Blueprint
from project.api.auth import auth_required, current_session_id, current_user
from project.api.ratelimits import code_limit, ends_sessions, password_limit
from project.schemas.auth import CodeSchema
from project.schemas.factors import (
    EnrolmentSchema,
    FactorListSchema,
    FactorRemoveSchema,
    RecoveryCodesSchema,
    TotpStartSchema,
)
from project.services import totp
from project.services.totp import Enrolment, FactorList

blp = Blueprint("factors", __name__, url_prefix="/auth/factors", description="Second factors")


@blp.route("", methods=["GET"])
@auth_required
@blp.response(200, FactorListSchema)
def list_factors() -> FactorList:
    """List the caller's authenticator apps and how many recovery codes are left.

    Pending apps (started, not confirmed) are listed with `active: false`. Secrets are never
    shown again after enrolment.
    """
    return totp.list_factors(user_id=current_user.id)


@blp.route("/totp", methods=["POST"])
@password_limit
@auth_required
@blp.arguments(
    TotpStartSchema, example={"password": "correct horse battery staple", "label": "Ada's phone"}
)
@blp.response(201, EnrolmentSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`")
@blp.alt_response(403, response="FORBIDDEN", description="`reauthentication_required`")
@blp.alt_response(409, response="CONFLICT", description="`conflict`: one is set up already")
def start_totp(data: dict[str, Any]) -> Enrolment:
    """Start setting up an authenticator app: returns its secret, URI and QR code, once.

    The password confirms it; an account without one (made by an identity provider) sends
    none and needs a sign-in within STEP_UP_MAX_AGE (else 403 `reauthentication_required`).
    The app is pending until confirmed with a code from it; starting again replaces a
    pending one. Scan `qr_svg` (or type `secret`) into the app.
    """
    return totp.start_enrolment(
        user_id=current_user.id,
        password=data.get("password"),
        session_id=current_session_id(),
        label=data.get("label"),
    )


@blp.route("/totp/<uuid:factor_id>/confirm", methods=["POST"])
@code_limit
@ends_sessions
@auth_required
@blp.arguments(CodeSchema, example={"code": "123456"})
@blp.response(200, RecoveryCodesSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_code`")
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
@blp.alt_response(409, response="CONFLICT", description="`conflict`: confirmed already")
def confirm_totp(data: dict[str, Any], factor_id: uuid.UUID) -> dict[str, list[str]]:
    """Confirm an authenticator app with a code from it; returns ten recovery codes, once.

    From now on sign-in asks for a code. Every other session of the account ends; this one
    counts as having passed the second factor. Keep the recovery codes somewhere safe: each
    signs in once in place of a code.
    """
    codes = totp.confirm_enrolment(
        user_id=current_user.id,
        factor_id=factor_id,
        code=data["code"],
        session_id=current_session_id(),
    )
    return {"recovery_codes": codes}


@blp.route("/totp/<uuid:factor_id>", methods=["DELETE"])
@password_limit
@ends_sessions
@auth_required
@blp.arguments(FactorRemoveSchema, example={"code": "123456"})
@blp.response(204)
@blp.alt_response(401, response="UNAUTHORIZED", description="`invalid_credentials`, `invalid_code`")
@blp.alt_response(403, response="FORBIDDEN", description="`step_up_required`")
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def remove_totp(data: dict[str, Any], factor_id: uuid.UUID) -> None:
    """Remove an authenticator app; an active one needs the password or a current code.

    Removing an active app also needs a session that passed the second factor within
    STEP_UP_MAX_AGE seconds (403 `step_up_required`). Every other session ends; with no
    factor left, the recovery codes are voided and sign-in asks for the password alone.
    """
    totp.remove(
        user_id=current_user.id,
        factor_id=factor_id,
        session_id=current_session_id(),
        password=data.get("password"),
        code=data.get("code"),
    )


@blp.route("/recovery-codes", methods=["POST"])
@auth_required
@blp.response(200, RecoveryCodesSchema)
@blp.alt_response(403, response="FORBIDDEN", description="`step_up_required`")
@blp.alt_response(409, response="CONFLICT", description="`conflict`: no authenticator app")
def regenerate_recovery_codes() -> dict[str, list[str]]:
    """Replace the recovery codes with ten new ones, shown once; the old ones stop working.

    Needs a session that passed the second factor within STEP_UP_MAX_AGE seconds.
    """
    codes = totp.regenerate_recovery_codes(user_id=current_user.id, session_id=current_session_id())
    return {"recovery_codes": codes}
