"""Authenticator-app codes (TOTP, RFC 6238) and recovery codes; no framework here."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
import uuid

import pyotp
import segno

# RFC 6238's defaults, which every authenticator app supports: SHA-1, 6 digits, 30 seconds.
DIGITS = 6
PERIOD = 30
# Codes of one step either side are accepted: clocks drift and people type slowly.
WINDOW = 1
RECOVERY_CODE_COUNT = 10
# 12 characters of 31 that cannot be mistaken for another (no 0/o, 1/i/l): 59 bits,
# shown as xxxx-xxxx-xxxx.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 12


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app imports."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code: a standalone SVG document (usable as an <img> source)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", xmldecl=False, scale=4, nl=False)
    return buffer.getvalue().decode()


def current_step(now: float | None = None) -> int:
    """The time step ``now`` falls in."""
    return int((time.time() if now is None else now) // PERIOD)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step within the window whose code ``code`` is, or None."""
    # isdigit() alone admits other scripts' digits, which compare_digest refuses to take.
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    step = current_step(now)
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        # Constant-time: a timing difference would leak how many leading digits matched.
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def new_recovery_codes() -> list[str]:
    """Ten fresh recovery codes, formatted for people to copy."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalize_recovery_code(code: str) -> str:
    """A recovery code as typed, without case, spaces or dashes."""
    return "".join(code.lower().split()).replace("-", "")


def recovery_code_hash(user_id: uuid.UUID, code: str) -> str:
    """What is stored for a recovery code: SHA-256 salted with its owner's id.

    The codes carry 59 random bits, so a fast hash suffices; the salt makes one table of
    guesses useless across accounts.
    """
    return hashlib.sha256(f"{user_id}:{normalize_recovery_code(code)}".encode()).hexdigest()
