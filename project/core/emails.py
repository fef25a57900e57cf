"""Email address normalization."""

from __future__ import annotations

import itertools
import unicodedata

import idna

# A domain's and a label's longest spelling (RFC 1035): longer ones have no other IDNA
# form, and the bound keeps the IDNA work on hostile input small.
MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
# Each label may be spelled either way: 2**n mixed spellings. Past this many
# internationalized labels only the all-ASCII and all-Unicode ones are looked up.
MAX_MIXED_LABELS = 4
# RFC 3454 table B.1, "commonly mapped to nothing": IDNA 2003 resolvers drop these.
MAPPED_TO_NOTHING = frozenset(
    "\u00ad\u034f\u1806\u180b\u180c\u180d\u200b\u200c\u200d\u2060\ufeff"
    + "".join(chr(code) for code in range(0xFE00, 0xFE10))
)


def normalize_email(email: str) -> str:
    """Return the form used to compare and index addresses: trimmed, lower case."""
    return email.strip().lower()


def spellings(email_normalized: str) -> set[str]:
    """The normalized address and the other spellings of its domain under IDNA 2008.

    ``bob@exämple.com`` and ``bob@xn--exmple-cua.com`` name one mailbox. Stored
    addresses are compared as written, so an address being claimed is looked up in every
    spelling, each label in its ASCII or Unicode form. A domain that is not valid IDNA
    (``xn--abc-``, upper case, a control character) has no other spelling.
    """
    labels = _idna_labels(email_normalized)
    if labels is None:
        return {email_normalized}
    ascii_labels, unicode_labels = labels
    per_label = [{a, u} for a, u in zip(ascii_labels, unicode_labels, strict=True)]
    if sum(len(forms) > 1 for forms in per_label) > MAX_MIXED_LABELS:
        domains = {".".join(ascii_labels), ".".join(unicode_labels)}
    else:
        domains = {".".join(choice) for choice in itertools.product(*per_label)}
    local = email_normalized.rpartition("@")[0]
    return {email_normalized} | {f"{local}@{domain}" for domain in domains}


def idna_changes_domain(address: str) -> bool:
    """Whether IDNA's mapping changes the address's domain other than in case.

    UTS 46 drops some characters (a soft hyphen, zero-width ones) and maps others, so
    mail to ``bob@exa\u00admple.com`` goes to example.com: a second spelling of that
    mailbox that ``spellings()`` of the plain address cannot know. Also true for a
    character older resolvers drop (RFC 3454's "mapped to nothing", such as a joiner)
    where IDNA 2008 refuses the domain, so it is stored as written.
    """
    domain = address.strip().rpartition("@")[2]
    if domain.isascii():
        return False
    try:
        mapped = idna.uts46_remap(domain, std3_rules=False)
    except (idna.IDNAError, UnicodeError):
        # A character UTS 46 forbids stops the whole mapping: map the others one by one,
        # so that it cannot hide one that would be dropped or changed.
        mapped = unicodedata.normalize("NFC", "".join(_remap_one(char) for char in domain))
    # Both sides through lower(): the two disagree only on a capital sigma ending a word,
    # which lower() makes a final sigma and UTS 46 a plain one; refused, as it should be.
    if mapped.lower() != domain.lower():
        return True
    if not MAPPED_TO_NOTHING.intersection(domain):
        return False
    try:
        idna.encode(domain, uts46=True)
    except (idna.IDNAError, UnicodeError):
        return True
    return False


def _remap_one(char: str) -> str:
    """UTS 46's mapping of one character; the character itself where it is forbidden."""
    try:
        return str(idna.uts46_remap(char, std3_rules=False))
    except (idna.IDNAError, UnicodeError):
        return char


def _idna_labels(email_normalized: str) -> tuple[list[str], list[str]] | None:
    """The domain's labels in ASCII and in Unicode; None if it has no other spelling."""
    _, at, domain = email_normalized.rpartition("@")
    if (
        not at
        or len(domain) > MAX_DOMAIN_LENGTH
        or any(len(label) > MAX_LABEL_LENGTH for label in domain.split("."))
    ):
        return None
    if domain.isascii() and "xn--" not in domain:
        return None  # the common case, without the IDNA tables
    try:
        # UTS 46 maps what lower() made of a label back to what IDNA takes: Cherokee is
        # valid only in capitals, which lower() turns into small letters.
        ascii_labels = idna.encode(domain, uts46=True).decode("ascii").split(".")
        unicode_labels = idna.decode(".".join(ascii_labels)).lower().split(".")
    except (idna.IDNAError, UnicodeError):
        return None
    return ascii_labels, unicode_labels
