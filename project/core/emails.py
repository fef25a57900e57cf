"""Email addresses: the form stored and the key compared, as email-validator normalizes them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

# The columns' size (users.email, users.email_normalized), an address's longest (RFC 5321).
MAX_LENGTH = 254


class InvalidEmailError(ValueError):
    """An address Warden does not accept; the message says why."""


@dataclass(frozen=True)
class Address:
    """An accepted address: ``email`` is shown and mailed, ``key`` is compared and indexed."""

    email: str
    key: str


def parse(text: str) -> Address:
    """Validate and normalize an address; raise InvalidEmailError with the reason.

    The library lower-cases the domain and gives IDNA's one Unicode spelling of it
    (``bob@xn--exmple-cua.com`` is ``bob@exämple.com``); it refuses characters IDNA would
    drop or map (a soft hyphen, zero-width ones), so no domain has a hidden second
    spelling. Warden compares local parts case-insensitively as well: the key lower-cases
    them. Its defaults are kept: no quoted local parts and no IP-address domains, which no
    account needs, and special-use domains (``.local``, ``.test``, ``localhost``,
    ``.invalid``) are refused: an account's mail must be deliverable, and examples and
    tests use ``example.com`` (RFC 2606), which the library accepts. No DNS lookup.
    """
    text = text.strip()
    # Bounded before the library's work (IDNA grows with the domain).
    if len(text) > MAX_LENGTH:
        raise InvalidEmailError(f"Longer than {MAX_LENGTH} characters.")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(str(exc)) from None
    # The library holds the normalized form to 254 UTF-8 bytes, and lower() never gives
    # a character more characters than its bytes ("İ", two, gives two): the key fits too.
    key = f"{valid.local_part.lower()}@{valid.domain}"
    return Address(email=valid.normalized, key=key)


def key_of(text: str) -> str:
    """The key to look an address up by (login, reset, resend).

    An address the library refuses can still name an account (migration 0005 leaves such
    rows as they were): its key is the trimmed, lower-cased text, the key those rows keep.
    """
    try:
        return parse(text).key
    except InvalidEmailError:
        return text.strip().lower()


def key_prefix(prefix: str) -> str:
    """A prefix of keys, for the admin filter: composed (NFC) and lower-cased like them."""
    return unicodedata.normalize("NFC", prefix.strip()).lower()
