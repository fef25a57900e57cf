"""The spellings of an address's domain that name the same mailbox (core/emails.py)."""

from __future__ import annotations

import pytest

from project.core.emails import idna_changes_domain, spellings


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("bob@example.com", {"bob@example.com"}),
        ("bob@exämple.com", {"bob@exämple.com", "bob@xn--exmple-cua.com"}),
        ("bob@xn--exmple-cua.com", {"bob@exämple.com", "bob@xn--exmple-cua.com"}),
        ("a@xn--strae-oqa.de", {"a@xn--strae-oqa.de", "a@straße.de"}),
        # Cherokee is valid IDNA only in capitals; stored addresses are lower-cased.
        ("a@xn--f9dt7l.com", {"a@xn--f9dt7l.com", "a@ꮳꮃꭹ.com"}),
        ("a@ꮳꮃꭹ.com", {"a@xn--f9dt7l.com", "a@ꮳꮃꭹ.com"}),
        (
            "a@xn--bcher-kva.exämple.de",
            {
                "a@xn--bcher-kva.exämple.de",
                "a@bücher.exämple.de",
                "a@xn--bcher-kva.xn--exmple-cua.de",
                "a@bücher.xn--exmple-cua.de",
            },
        ),
        # Past four internationalized labels, only the all-ASCII and all-Unicode ones.
        (
            "a@ä.ö.ü.å.é.de",
            {"a@ä.ö.ü.å.é.de", "a@xn--4ca.xn--nda.xn--tda.xn--5ca.xn--9ca.de"},
        ),
        # Not valid IDNA 2008: no other spelling. A hyphen at the end ("abc"), not the
        # canonical encoding of "ü" (xn--tda), control characters.
        ("dan@xn--abc-.com", {"dan@xn--abc-.com"}),
        ("dan@xn---tda.com", {"dan@xn---tda.com"}),
        ("dan@xn--faj.com", {"dan@xn--faj.com"}),
        # Longer than a label or a domain may be: not decoded at all.
        ("dan@" + "ä" * 64 + ".com", {"dan@" + "ä" * 64 + ".com"}),
        ("dan@" + ".".join(["ä" * 60] * 5), {"dan@" + ".".join(["ä" * 60] * 5)}),
        ("no-at-sign", {"no-at-sign"}),
    ],
)
def test_spellings_of_a_domain(address: str, expected: set[str]) -> None:
    assert spellings(address) == expected


@pytest.mark.parametrize(
    ("address", "changed"),
    [
        ("bob@example.com", False),
        ("Bob@EXÄMPLE.com", False),  # case only
        ("bob@xn--exmple-cua.com", False),
        ("bob@bücher.xn--exmple-cua.de", False),
        ("a@ᏣᎳᎩ.com", False),
        ("dan@xn--abc-.com", False),  # not IDNA at all: nothing to compare with
        ("a@ΕΛΛΆΔΑ.ΕΛ", False),
        ("a@οδος-1.gr", False),  # a final sigma typed as such is its own label
        ("a@क्\u200dष.com", False),  # a joiner IDNA 2008 allows in this context
        ("victim@exa\u00admple.com", True),  # the soft hyphen is dropped
        ("bob@ex\u200bämple.com", True),  # so is the zero-width space
        # Padding the last label past 63 characters changes nothing: still example.com.
        ("victim@example.co" + "\u00ad" * 62 + "m", True),
        # lower() writes the capital sigma ending a word as a final sigma; UTS 46 does not.
        ("bob@ΟΔΟΣ-1.gr", True),
        # Joiners IDNA 2008 refuses here: stored as written, dropped by older resolvers.
        ("victim@exa\u200dmple.com", True),
        ("victim@exa\u200cmple.com", True),
        # A character UTS 46 forbids does not hide the ones it would drop or change.
        ("victim@exa\u2064mple.co\ue000m", True),
        ("bob@\ue000.ΟΔΟΣ", True),
    ],
)
def test_idna_changes_domain(address: str, changed: bool) -> None:
    assert idna_changes_domain(address) is changed
