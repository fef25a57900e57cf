"""Facts about the calling client that use cases record."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientInfo:
    """The client's address and user agent, as the API layer saw them."""

    ip: str | None = None
    user_agent: str | None = None


def clean_user_agent(raw: str | None) -> str | None:
    """A User-Agent as kept: at most 512 characters, without NUL (PostgreSQL refuses it)."""
    if not raw:
        return None
    return raw.replace("\x00", "")[:512] or None
