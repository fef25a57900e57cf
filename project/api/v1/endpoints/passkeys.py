"""Passkeys (WebAuthn): register, list, rename, delete, and sign in with one."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response

from project.api.arguments import Blueprint
from project.api.auth import (
    auth_required,
    client_info,
    current_session_id,
    current_user,
    deliver_tokens,
)
from project.api.ratelimits import ends_sessions, passkey_limit
from project.models import Passkey
from project.schemas.auth import TOKENS_DOC, LoginQuerySchema, TokenDelivery
from project.schemas.passkeys import (
    AuthenticationSchema,
    AuthenticationStartSchema,
    CeremonySchema,
    PasskeySchema,
    PasskeyUpdateSchema,
    RegistrationSchema,
    StepUpSchema,
)
from project.services import passkeys
from project.services.passkeys import Ceremony

blp = Blueprint(
    "passkeys", __name__, url_prefix="/auth/passkeys", description="Passkeys (WebAuthn)"
)

CEREMONY_ID = "0b7e3c52-4b1f-4c1e-9a43-2f6d1f0e8a11"
CREDENTIAL_ID = "kL3v6Zt0Jq9aXc1mW8yB2u"
REGISTRATION_EXAMPLE = {
    "ceremony": CEREMONY_ID,
    "credential": {
        "id": CREDENTIAL_ID,
        "rawId": CREDENTIAL_ID,
        "type": "public-key",
        "response": {
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwi…",
            "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVj…",
            "transports": ["internal", "hybrid"],
        },
        "clientExtensionResults": {},
    },
    "name": "Work laptop",
}
AUTHENTICATION_EXAMPLE = {
    "ceremony": CEREMONY_ID,
    "credential": {
        "id": CREDENTIAL_ID,
        "rawId": CREDENTIAL_ID,
        "type": "public-key",
        "response": {
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0Iiwi…",
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
            "signature": "MEUCIQDd…",
            "userHandle": "3q2-796tvu_erb7v3q2-7w",
        },
        "clientExtensionResults": {},
    },
}


@blp.route("/register/options", methods=["POST"])
@auth_required
@blp.response(200, CeremonySchema)
def start_registration() -> Ceremony:
    """Start adding a passkey: options for navigator.credentials.create().

    The passkey must be discoverable (a resident key) and verify its user (PIN or biometric).
    The challenge is answered once, within WEBAUTHN_CHALLENGE_TTL seconds.
    """
    return passkeys.start_registration(user=current_user)


@blp.route("/register/verify", methods=["POST"])
@ends_sessions
@auth_required
@blp.arguments(RegistrationSchema, example=REGISTRATION_EXAMPLE)
@blp.response(201, PasskeySchema)
@blp.alt_response(400, response="BAD_REQUEST", description="`invalid_ceremony`, `passkey_invalid`")
@blp.alt_response(409, response="CONFLICT", description="`passkey_exists`")
def finish_registration(data: dict[str, Any]) -> Passkey:
    """Finish adding a passkey with the browser's answer; other sessions end.

    Verifies the answer against the ceremony's challenge, the relying party id and the allowed
    origins. The passkey is a second factor from then on, and every other session of the user
    ends.
    """
    return passkeys.finish_registration(
        user=current_user,
        session_id=current_session_id(),
        ceremony=data["ceremony"],
        credential=data["credential"],
        name=data.get("name"),
    )


@blp.route("", methods=["GET"])
@auth_required
@blp.response(200, PasskeySchema(many=True))
def list_passkeys() -> list[Passkey]:
    """List the caller's passkeys, oldest first.

    Public facts only: name, when it was added and last used, transports and whether it is
    synced. Nothing listed lets anyone sign in.
    """
    return passkeys.list_passkeys(user_id=current_user.id)


@blp.route("/<uuid:passkey_id>", methods=["PATCH"])
@auth_required
@blp.arguments(PasskeyUpdateSchema, example={"name": "Work laptop"})
@blp.response(200, PasskeySchema)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def rename_passkey(data: dict[str, Any], passkey_id: uuid.UUID) -> Passkey:
    """Rename one of the caller's passkeys.

    Names help tell passkeys apart (1 to 100 characters); another user's id is answered 404.
    """
    return passkeys.rename_passkey(
        user_id=current_user.id, passkey_id=passkey_id, name=data["name"]
    )


@blp.route("/<uuid:passkey_id>", methods=["DELETE"])
@ends_sessions
@auth_required
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`")
def delete_passkey(passkey_id: uuid.UUID) -> None:
    """Remove one of the caller's passkeys; other sessions end.

    Lowers protection, so it needs a recent sign-in with a second factor when the caller has
    one (403 `step_up_required`). Every other session of the user ends.
    """
    passkeys.delete_passkey(
        user=current_user, session_id=current_session_id(), passkey_id=passkey_id
    )


@blp.route("/authenticate/options", methods=["POST"])
@passkey_limit
@blp.arguments(AuthenticationStartSchema, example={})
@blp.response(200, CeremonySchema)
def start_authentication(data: dict[str, Any]) -> Ceremony:
    """Start a passkey sign-in: options for navigator.credentials.get().

    Without `challenge`, any discoverable passkey of this relying party may answer: no email is
    typed. With the `challenge` of a 202 login answer, the options name that user's passkeys.
    """
    return passkeys.start_sign_in(challenge=data.get("challenge"))


@blp.route("/authenticate/verify", methods=["POST"])
@passkey_limit
@blp.arguments(AuthenticationSchema, example=AUTHENTICATION_EXAMPLE)
@blp.arguments(LoginQuerySchema, location="query")
@blp.response(200, TOKENS_DOC)
@blp.alt_response(400, response="BAD_REQUEST", description="`invalid_ceremony`")
@blp.alt_response(
    401, response="UNAUTHORIZED", description="`passkey_refused`, `passkey_clone_suspected`"
)
@blp.alt_response(403, response="FORBIDDEN", description="`account_disabled`")
def finish_authentication(data: dict[str, Any], query: dict[str, Any]) -> Response:
    """Sign in with a passkey; returns tokens, or sets cookies with ?mode=cookie.

    A user-verified passkey counts as two factors (`amr` `["webauthn"]`), so no second-factor
    challenge follows. With the `challenge` of a 202 login answer, the passkey is its second
    factor. A signature counter that does not advance refuses the sign-in
    (`passkey_clone_suspected`).
    """
    signed_in = passkeys.sign_in(
        ceremony=data["ceremony"],
        credential=data["credential"],
        challenge=data.get("challenge"),
        client=client_info(),
    )
    return deliver_tokens(
        signed_in.tokens,
        cookie=query["mode"] is TokenDelivery.COOKIE,
        device_token=signed_in.device_token,
    )


@blp.route("/step-up/options", methods=["POST"])
@auth_required
@blp.response(200, CeremonySchema)
@blp.alt_response(404, response="NOT_FOUND", description="`not_found`: no passkey")
def start_step_up() -> Ceremony:
    """Start proving a passkey again for this session: options for navigator.credentials.get().

    Before an operation that lowers protection answers 403 `step_up_required`, prove a passkey
    for the session; the options name the caller's passkeys.
    """
    return passkeys.start_step_up(user=current_user)


@blp.route("/step-up/verify", methods=["POST"])
@auth_required
@blp.arguments(StepUpSchema, example={"ceremony": CEREMONY_ID, **AUTHENTICATION_EXAMPLE})
@blp.response(204)
@blp.alt_response(400, response="BAD_REQUEST", description="`invalid_ceremony`")
def finish_step_up(data: dict[str, Any]) -> None:
    """Prove a passkey for this session: its `amr` gains `webauthn` and `auth_time` is now.

    Counts for STEP_UP_MAX_AGE seconds: removing a factor, changing the password or email and
    deleting the account are then allowed. A refused passkey is 401 `passkey_refused` (or
    `passkey_clone_suspected`); the session itself stays valid.
    """
    passkeys.step_up(
        user=current_user,
        session_id=current_session_id(),
        ceremony=data["ceremony"],
        credential=data["credential"],
    )
