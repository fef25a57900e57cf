"""Email address normalization."""


def normalize_email(email: str) -> str:
    """Return the form used to compare and index addresses: trimmed, lower case."""
    return email.strip().lower()
