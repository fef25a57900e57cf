"""Email address normalization."""

from __future__ import annotations

import unicodedata

# The prefix of an IDNA A-label: the ASCII form of an internationalized domain's label.
ACE_PREFIX = "xn--"


def normalize_email(email: str) -> str:
    """Return the form used to compare and index addresses.

    Trimmed and lower case, with the domain's IDNA A-labels ("xn--...") as the Unicode
    labels they encode, so ``bob@xn--exmple-cua.com`` is ``bob@exämple.com``.
    """
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or ACE_PREFIX not in domain:
        return address
    return local + at + ".".join(_unicode_label(label) for label in domain.split("."))


def normalize_email_prefix(prefix: str) -> str:
    """Return the start of normalized addresses that ``prefix`` matches (the admin filter).

    As normalize_email, except that the last label may be cut short, so it stays as typed.
    """
    start = prefix.strip().lower()
    head, at, domain = start.rpartition("@")
    if not at or ACE_PREFIX not in domain:
        return start
    *complete, last = domain.split(".")
    return head + at + ".".join([*(_unicode_label(label) for label in complete), last])


def _unicode_label(label: str) -> str:
    """The Unicode label an A-label stands for; any other label as it is.

    Only the canonical encoding of a lower-case, NFKC-stable label with a non-ASCII
    character is decoded (what IDNA allows). Anything else, such as ``xn--abc-`` (which
    decodes to "abc"), stands for no Unicode label and is compared as written.
    """
    if not label.startswith(ACE_PREFIX):
        return label
    encoded = label[len(ACE_PREFIX) :]
    try:
        decoded = encoded.encode("ascii").decode("punycode")
        canonical = decoded.encode("punycode").decode("ascii") == encoded
        decoded.encode("utf-8")  # no lone surrogate: the database could not store it
    except UnicodeError:
        return label
    if (
        not canonical
        or decoded.isascii()
        or decoded != unicodedata.normalize("NFKC", decoded.lower())
    ):
        return label
    return decoded
