"""How addresses are normalized to be compared and indexed (project/core/emails.py)."""

from __future__ import annotations

import pytest

from project.core.emails import normalize_email, normalize_email_prefix


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        (" Bob@Example.COM ", "bob@example.com"),
        ("Bob@XN--Exmple-CUA.com", "bob@exämple.com"),
        ("bob@exämple.com", "bob@exämple.com"),
        ("a@xn--bcher-kva.mail.xn--exmple-cua.de", "a@bücher.mail.exämple.de"),
        ("a@xn--strae-oqa.de", "a@straße.de"),
        ("a@xn--tda.com", "a@ü.com"),
        # The local part is never decoded: only a domain has labels.
        ("xn--exmple-cua@example.com", "xn--exmple-cua@example.com"),
        # Not A-labels: decoding to plain ASCII ("abc"), empty, broken, not canonical,
        # or to upper case: compared as written, so they cannot take another's address.
        ("dan@xn--abc-.com", "dan@xn--abc-.com"),
        ("dan@xn--.com", "dan@xn--.com"),
        ("dan@xn--zzzz.com", "dan@xn--zzzz.com"),
        ("dan@xn--exmple-cua0.com", "dan@xn--exmple-cua0.com"),
        ("dan@xn---tda.com", "dan@xn---tda.com"),  # "ü", whose A-label is xn--tda
        ("dan@xn--exmple-xna.com", "dan@xn--exmple-xna.com"),  # "exÄmple"
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_a_domains_a_labels_compare_as_their_unicode_labels(address: str, normalized: str) -> None:
    assert normalize_email(address) == normalized


def test_a_prefix_keeps_its_last_label_as_typed() -> None:
    # The last label may be cut short; decoding a piece of an A-label means nothing.
    assert normalize_email_prefix("Bob@XN--exmple-cua.co") == "bob@exämple.co"
    assert normalize_email_prefix("bob@xn--exm") == "bob@xn--exm"
    assert normalize_email_prefix("BOB@") == "bob@"
