"""Password policy: length, no breached passwords, not built from the email."""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from project.core.security import normalized

MIN_LENGTH = 8
MAX_LENGTH = 128
# Shorter local parts ("al@…") would forbid too many ordinary passwords.
MIN_LOCAL_PART = 3


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 100,000 most common passwords from breaches (SecLists), lower-cased."""
    data = resources.files("project.core").joinpath("data/common-passwords-100k.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def password_problems(password: str, *, email: str, check_breached: bool = True) -> list[str]:
    """Return why ``password`` is unacceptable for the account ``email`` (empty when fine)."""
    # Judge the password that is hashed (security.py hashes the NFKC form): the full-width
    # forms of "password123" are "password123" once normalized.
    password = normalized(password)
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"Use {MIN_LENGTH} to {MAX_LENGTH} characters.")
    if check_breached and password.lower() in common_passwords():
        problems.append("This password is among the most common breached passwords.")
    local_part = email.split("@", 1)[0].strip().lower()
    if len(local_part) >= MIN_LOCAL_PART and local_part in password.lower():
        problems.append("The password must not contain the email address's name.")
    return problems
