"""Email address normalization."""

from __future__ import annotations

import itertools

import idna

# A domain's and a label's longest spelling (RFC 1035): longer ones have no other IDNA
# form, and the bound keeps the IDNA work on hostile input small.
MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
# Each label may be spelled either way: 2**n mixed spellings. Past this many
# internationalized labels only the all-ASCII and all-Unicode ones are looked up.
MAX_MIXED_LABELS = 4


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
    mailbox that ``spellings()`` of the plain address cannot know. Each typed label must
    be its ASCII or its Unicode form.
    """
    labels = _idna_labels(normalize_email(address))
    if labels is None:
        return False
    typed = address.strip().rpartition("@")[2].lower().split(".")
    ascii_labels, unicode_labels = labels
    if len(typed) != len(ascii_labels):
        return True
    return any(
        label not in (a, u) for label, a, u in zip(typed, ascii_labels, unicode_labels, strict=True)
    )


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
