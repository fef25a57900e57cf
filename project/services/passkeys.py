"""Passkeys (WebAuthn): registration by a signed-in user, their upkeep, and sign-in with one.

Every ceremony answers a challenge kept server-side (``webauthn_challenges``): taken, and so
deleted, by the first answer, refused once expired. User verification is required, so a
passkey proves possession and a PIN or biometric at once and counts as two factors.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    options_to_json_dict,
    parse_authentication_credential_json,
)
from webauthn.helpers.exceptions import InvalidRegistrationResponse, WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from project.core import errors
from project.core.settings import current_settings
from project.extensions import db
from project.models import AuditEventType, CeremonyKind, Passkey, User, WebAuthnChallenge
from project.models.types import utcnow
from project.repositories.passkeys import ChallengeRepository, PasskeyRepository
from project.services import assurance, audit, signin
from project.services.client import ClientInfo
from project.services.sessions import end_sessions, publish_revocations
from project.services.signin import SignIn

# What py_webauthn raises on input it cannot read besides its own errors: bad base64 or
# CBOR (ValueError), a field of the wrong JSON type (TypeError, AttributeError), a short
# byte string (IndexError), a missing key (KeyError).
MALFORMED = (WebAuthnException, ValueError, TypeError, AttributeError, IndexError, KeyError)
DEFAULT_NAME = "Passkey"


@dataclass(frozen=True)
class Ceremony:
    """A started ceremony: its id, to send back, and the options for the browser's call."""

    ceremony: uuid.UUID
    options: dict[str, Any]


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in passkey.transports:
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue  # one this library version does not know
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=transports or None)


def _store(kind: CeremonyKind, challenge: bytes, *, user_id: uuid.UUID | None) -> uuid.UUID:
    """Keep a new challenge until it is answered or expires; clear out expired ones."""
    now = utcnow()
    challenges = ChallengeRepository()
    challenges.delete_expired(now=now)
    stored = challenges.add(
        WebAuthnChallenge(
            kind=kind,
            challenge=challenge,
            user_id=user_id,
            expires_at=now + timedelta(seconds=current_settings().WEBAUTHN_CHALLENGE_TTL),
        )
    )
    return stored.id


def _take(ceremony: uuid.UUID, kind: CeremonyKind) -> WebAuthnChallenge:
    """The challenge of a ceremony, used up by this call; InvalidCeremony if there is none."""
    found = ChallengeRepository().take(ceremony, kind=kind, now=utcnow())
    if found is None:
        raise errors.InvalidCeremony("This passkey ceremony is unknown, used or expired.")
    return found


def start_registration(*, user: User) -> Ceremony:
    """Options for navigator.credentials.create(): a discoverable, user-verified passkey."""
    settings = current_settings()
    existing = PasskeyRepository().for_user(user.id)
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        # The user handle is the account's random id: it names nobody outside Warden.
        user_id=user.id.bytes,
        user_name=user.email,
        user_display_name=user.full_name or user.email,
        timeout=settings.WEBAUTHN_CHALLENGE_TTL * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(passkey) for passkey in existing],
    )
    ceremony = _store(CeremonyKind.REGISTRATION, options.challenge, user_id=user.id)
    db.session.commit()
    return Ceremony(ceremony, options_to_json_dict(options))


def finish_registration(
    *,
    user: User,
    session_id: uuid.UUID,
    ceremony: uuid.UUID,
    credential: dict[str, Any],
    name: str | None,
) -> Passkey:
    """Verify the authenticator's answer and keep the passkey; the user's other sessions end."""
    settings = current_settings()
    challenge = _take(ceremony, CeremonyKind.REGISTRATION)
    if challenge.user_id != user.id:
        raise errors.InvalidCeremony("This passkey ceremony is unknown, used or expired.")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge.challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            require_user_verification=True,
        )
        # The library reads the id from the signed data; the one sent beside it must match.
        if bytes_to_base64url(verified.credential_id) != credential.get("id"):
            raise InvalidRegistrationResponse("id differs from the attested credential id")
    except MALFORMED as exc:
        audit.record_now(
            AuditEventType.PASSKEY_FAILED,
            user_id=user.id,
            details={"ceremony": "registration", "reason": _reason(exc)},
        )
        raise errors.PasskeyInvalid("The passkey could not be verified.") from None
    passkeys = PasskeyRepository()
    if passkeys.by_credential_id(verified.credential_id) is not None:
        db.session.commit()  # the challenge stays used
        raise errors.PasskeyExists("This passkey is registered already.")
    response = credential.get("response")
    listed = response.get("transports") if isinstance(response, dict) else None
    # Kept to hint the browser on later ceremonies; only the names WebAuthn defines.
    known = {transport.value for transport in AuthenticatorTransport}
    transports = sorted(
        {item for item in listed if isinstance(item, str) and item in known}
        if isinstance(listed, list)
        else []
    )
    passkey = passkeys.add(
        Passkey(
            user_id=user.id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=transports,
            name=name or DEFAULT_NAME,
            aaguid=verified.aaguid,
            backup_eligible=verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
        )
    )
    revoked = end_sessions(user.id, keep=session_id)
    audit.record(
        AuditEventType.PASSKEY_REGISTERED,
        user_id=user.id,
        details={
            "passkey_id": str(passkey.id),
            "name": passkey.name,
            "sessions_ended": len(revoked),
        },
    )
    db.session.commit()
    publish_revocations(revoked, cause="factor_enrolled")
    return passkey


def _reason(exc: Exception) -> str:
    """A short, secret-free reason for the audit trail."""
    return str(exc)[:200] if isinstance(exc, WebAuthnException) else "malformed response"


def list_passkeys(*, user_id: uuid.UUID) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return PasskeyRepository().for_user(user_id)


def _own(user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey:
    passkey = PasskeyRepository().get(passkey_id)
    if passkey is None or passkey.user_id != user_id:
        raise errors.NotFound("No passkey with this id.")
    return passkey


def rename_passkey(*, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str) -> Passkey:
    """Give one of the user's passkeys a new name."""
    passkey = _own(user_id, passkey_id)
    passkey.name = name
    audit.record(
        AuditEventType.PASSKEY_RENAMED,
        user_id=user_id,
        details={"passkey_id": str(passkey.id), "name": name},
    )
    db.session.commit()
    return passkey


def delete_passkey(*, user: User, session_id: uuid.UUID, passkey_id: uuid.UUID) -> None:
    """Remove one of the user's passkeys, after a recent second factor; other sessions end."""
    passkey = _own(user.id, passkey_id)
    assurance.require_recent_factor(user, session_id=session_id)
    PasskeyRepository().delete(passkey)
    revoked = end_sessions(user.id, keep=session_id)
    audit.record(
        AuditEventType.PASSKEY_REMOVED,
        user_id=user.id,
        details={
            "passkey_id": str(passkey_id),
            "name": passkey.name,
            "sessions_ended": len(revoked),
        },
    )
    db.session.commit()
    publish_revocations(revoked, cause="factor_removed")


def has_passkey(user_id: uuid.UUID) -> bool:
    """Whether the user has registered a passkey (a factor)."""
    return PasskeyRepository().count_for_user(user_id) > 0


def start_authentication(*, user_id: uuid.UUID | None = None) -> Ceremony:
    """Options for navigator.credentials.get(): any discoverable passkey, or ``user_id``'s."""
    settings = current_settings()
    allowed = PasskeyRepository().for_user(user_id) if user_id is not None else []
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        timeout=settings.WEBAUTHN_CHALLENGE_TTL * 1000,
        allow_credentials=[_descriptor(passkey) for passkey in allowed],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    ceremony = _store(CeremonyKind.AUTHENTICATION, options.challenge, user_id=user_id)
    db.session.commit()
    return Ceremony(ceremony, options_to_json_dict(options))


def _refuse(reason: str, *, user_id: uuid.UUID | None = None) -> errors.AppError:
    """Audit a refused passkey sign-in and return the one error every such refusal gets."""
    audit.record_now(
        AuditEventType.PASSKEY_FAILED,
        user_id=user_id,
        details={"ceremony": "authentication", "reason": reason},
    )
    return errors.PasskeyRefused("The passkey was not accepted.")


def verify_assertion(
    *, ceremony: uuid.UUID, credential: dict[str, Any]
) -> tuple[User, WebAuthnChallenge]:
    """Check a sign-in answer: the user it proves, and the challenge it answered (now used).

    The counter is compared here rather than in the library, so that a counter that does
    not advance is told apart from other failures: it means a cloned authenticator.
    """
    settings = current_settings()
    challenge = _take(ceremony, CeremonyKind.AUTHENTICATION)
    try:
        parsed: AuthenticationCredential = parse_authentication_credential_json(credential)
    except MALFORMED as exc:
        raise _refuse(_reason(exc)) from None
    passkeys = PasskeyRepository()
    # Locked: two sign-ins with one counter value cannot both pass.
    passkey = passkeys.by_credential_id(parsed.raw_id, lock=True)
    if passkey is None:
        raise _refuse("unknown credential")
    handle = parsed.response.user_handle
    if (handle is not None and handle != passkey.user_id.bytes) or (
        challenge.user_id is not None and challenge.user_id != passkey.user_id
    ):
        raise _refuse("credential of another user", user_id=passkey.user_id)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge.challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,  # compared below
            require_user_verification=True,
        )
    except MALFORMED as exc:
        raise _refuse(_reason(exc), user_id=passkey.user_id) from None
    stored, presented = passkey.sign_count, verified.new_sign_count
    went_back = bool(stored or presented) and presented <= stored
    # The UPDATE is conditional on the counter read: a sign-in that moved it meanwhile
    # (possible where rows are not locked, as on SQLite) makes this one the copy.
    if went_back or not passkeys.advance_counter(
        passkey.id, seen=stored, new=presented, now=utcnow()
    ):
        audit.record_now(
            AuditEventType.PASSKEY_CLONE_SUSPECTED,
            user_id=passkey.user_id,
            details={
                "passkey_id": str(passkey.id),
                "stored_count": stored,
                "presented_count": presented,
            },
        )
        raise errors.PasskeyCloneSuspected(
            "This passkey's signature counter went back: the authenticator may be a copy."
        )
    user = db.session.get(User, passkey.user_id)
    if user is None:
        raise _refuse("unknown credential")
    return user, challenge


def start_sign_in(*, challenge: str | None) -> Ceremony:
    """Start a sign-in: by any discoverable passkey, or as the second factor of ``challenge``."""
    if challenge is None:
        return start_authentication()
    return start_authentication(user_id=signin.pending_user(challenge).id)


def sign_in(
    *, ceremony: uuid.UUID, credential: dict[str, Any], challenge: str | None, client: ClientInfo
) -> SignIn:
    """Sign in with a passkey, alone or as the second factor of a password sign-in.

    A user-verified passkey counts as two factors, so no challenge follows.
    """
    user, _ = verify_assertion(ceremony=ceremony, credential=credential)
    # The ceremony is spent and the counter kept, whatever happens next.
    db.session.commit()
    if not user.is_active:
        audit.record_now(
            AuditEventType.LOGIN_FAILED, user_id=user.id, details={"reason": "deactivated"}
        )
        raise errors.AccountDisabled("This account has been deactivated.")
    if challenge is not None:
        if signin.pending_user(challenge).id != user.id:
            raise _refuse("passkey of another user than the challenge's", user_id=user.id)
        return signin.complete(challenge, client, method="webauthn")
    result = signin.finish(user, client, methods=["webauthn"])
    assert isinstance(result, SignIn)  # a passkey proves the second factor itself
    return result


def start_step_up(*, user: User) -> Ceremony:
    """Options to prove a passkey again for a live session (before lowering protection)."""
    if not has_passkey(user.id):
        raise errors.NotFound("This account has no passkey.")
    return start_authentication(user_id=user.id)


def step_up(
    *, user: User, session_id: uuid.UUID, ceremony: uuid.UUID, credential: dict[str, Any]
) -> None:
    """Prove one of the user's passkeys for the caller's session: its amr gains webauthn."""
    proved, _ = verify_assertion(ceremony=ceremony, credential=credential)
    if proved.id != user.id:
        db.session.commit()  # the ceremony stays spent
        raise _refuse("passkey of another user", user_id=user.id)
    assurance.mark_proved(user, session_id=session_id, method="webauthn")
    db.session.commit()
