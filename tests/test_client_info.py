"""The client address and user agent as Warden keeps them."""

from __future__ import annotations

import pytest

from project.services.client import _canonical_ip, clean_ip, clean_user_agent


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ("not an address", None),
        ("", None),
        (None, None),
        ("1.2.3.4, 5.6.7.8", None),
    ],
)
def test_an_address_is_kept_in_canonical_form(raw: str | None, kept: str | None) -> None:
    assert clean_ip(raw) == kept


def test_a_repeated_address_is_parsed_once() -> None:
    _canonical_ip.cache_clear()
    for _ in range(3):
        assert clean_ip("192.0.2.7") == "192.0.2.7"
    info = _canonical_ip.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_text_too_long_for_an_address_is_neither_parsed_nor_remembered() -> None:
    _canonical_ip.cache_clear()
    # A zone id makes a long but valid address; past 100 characters nothing is one.
    assert clean_ip("fe80::1%" + "z" * 80) == "fe80::1"
    assert clean_ip("fe80::1%" + "z" * 200) is None
    assert clean_ip("x" * 8000) is None
    assert _canonical_ip.cache_info().currsize == 1


def test_a_user_agent_is_bounded_and_without_nul() -> None:
    assert clean_user_agent("curl/8\x00.0") == "curl/8.0"
    assert clean_user_agent("a" * 600) == "a" * 512
    assert clean_user_agent("\x00") is None
    assert clean_user_agent(None) is None
