"""Addresses in their stored form and their key (core/emails.py on email-validator)."""

from __future__ import annotations

import pytest

from project.core import emails
from project.core.emails import Address, InvalidEmailError

# A domain that with a 64-character local part fills 254 characters.
LONG_DOMAIN = "a" * 63 + "." + "b" * 63 + "." + "c" * 57 + ".com"


@pytest.mark.parametrize(
    ("text", "email", "key"),
    [
        ("  Bob@Example.COM ", "Bob@example.com", "bob@example.com"),
        ("bob@exämple.com", "bob@exämple.com", "bob@exämple.com"),
        # The A-label and its Unicode spelling are one domain.
        ("Bob@XN--exmple-cua.com", "Bob@exämple.com", "bob@exämple.com"),
        ("a@xn--strae-oqa.de", "a@straße.de", "a@straße.de"),
        ("eve@xn--bcher-kva.EXÄMPLE.de", "eve@bücher.exämple.de", "eve@bücher.exämple.de"),
        # Cherokee is valid IDNA only in capitals: the domain keeps the library's case.
        ("a@ꮳꮃꭹ.com", "a@ᏣᎳᎩ.com", "a@ᏣᎳᎩ.com"),
        ("a@xn--f9dt7l.com", "a@ᏣᎳᎩ.com", "a@ᏣᎳᎩ.com"),
        # Full-width letters in a domain are ASCII ones under UTS 46.
        (
            "bob@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
            "bob@example.com",
            "bob@example.com",
        ),
        # The Kelvin sign composes (NFC) to a capital K.
        ("\u212aate@example.com", "Kate@example.com", "kate@example.com"),
        ("o\u0308@example.com", "ö@example.com", "ö@example.com"),
        ("İ@example.com", "İ@example.com", "i\u0307@example.com"),
        ("seed0000001@seed.example", "seed0000001@seed.example", "seed0000001@seed.example"),
    ],
)
def test_parse_gives_the_stored_form_and_the_key(text: str, email: str, key: str) -> None:
    assert emails.parse(text) == Address(email=email, key=key)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not-an-email", "must have an @-sign"),
        ("bob@exa\u00admple.com", "SOFT HYPHEN"),
        ("bob@exa\u200dmple.com", "ZERO WIDTH JOINER"),
        ("bob@xn--abc-.com", "hyphen"),
        ('"bob"@example.com', "Quoting"),
        ("bob@[192.0.2.1]", "bracketed IP address"),
        ("bob@localhost", "period"),
        ("bob@printer.local", "special-use"),
        ("bob@host.test", "special-use"),
        ("x\x00y@example.com", r"U\+0000"),
        ("\udcff@example.com", r"U\+DCFF"),
        ("bob@" + "a" * 300 + ".com", "Longer than 254"),
        ("x" * 10**6, "Longer than 254"),
        # 254 characters, but 318 UTF-8 bytes: the library counts bytes.
        ("İ" * 64 + "@" + LONG_DOMAIN, "too long"),
    ],
)
def test_parse_refuses_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidEmailError, match=reason):
        emails.parse(text)


def test_a_key_is_never_longer_in_characters_than_its_address_in_bytes() -> None:
    """Why parse() needs no length check of its own on the lower-cased key."""
    for code in range(0x110000):
        if not 0xD800 <= code <= 0xDFFF:
            char = chr(code)
            assert len(char.lower()) <= len(char.encode()), hex(code)
    address = emails.parse("İ" * 64 + "@" + "x" * 50 + ".com")
    assert len(address.key) == 128 + 1 + 54


def test_a_normalized_address_is_its_own_normalized_form() -> None:
    for text in ("Bob@XN--exmple-cua.com", "a@ꮳꮃꭹ.com", "\u212aate@example.com"):
        address = emails.parse(text)
        assert emails.parse(address.email) == address


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (" Bob@Example.COM", "bob@example.com"),
        ("bob@XN--exmple-cua.com", "bob@exämple.com"),
        # Refused by the library: the trimmed, lower-cased text older rows keep.
        (" Root@LocalHost ", "root@localhost"),
        ('"Bob"@Example.com', '"bob"@example.com'),
    ],
)
def test_key_of_falls_back_for_addresses_the_library_refuses(text: str, key: str) -> None:
    assert emails.key_of(text) == key


def test_key_prefix_is_composed_and_lower_cased() -> None:
    assert emails.key_prefix(" BOB@EXA\u0308") == "bob@exä"
