"""Password hashing."""

from __future__ import annotations

import pytest

from project.core import security


def test_hash_and_verify() -> None:
    hashed = security.hash_password("correct horse", rounds=4)
    assert hashed.startswith("$2b$04$")
    assert security.verify_password("correct horse", hashed)
    assert not security.verify_password("correct horsE", hashed)


def test_every_character_counts_past_72_bytes() -> None:
    prefix = "ü" * 40  # 80 bytes in UTF-8
    hashed = security.hash_password(prefix + "a", rounds=4)
    assert security.verify_password(prefix + "a", hashed)
    assert not security.verify_password(prefix + "b", hashed)
    assert not security.verify_password(prefix, hashed)


def test_unicode_forms_are_the_same_password() -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    assert security.verify_password(decomposed, security.hash_password(composed, rounds=4))


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$2b$04$short"])
def test_garbage_hashes_never_verify(stored: str) -> None:
    assert security.verify_password("anything", stored) is False


def test_needs_rehash_follows_the_configured_cost() -> None:
    hashed = security.hash_password("pw", rounds=4)
    assert not security.needs_rehash(hashed, rounds=4)
    assert security.needs_rehash(hashed, rounds=5)
    assert security.needs_rehash("garbage", rounds=4)


def test_salts_differ() -> None:
    assert security.hash_password("same", rounds=4) != security.hash_password("same", rounds=4)
