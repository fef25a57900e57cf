"""Facts about the calling client that use cases record."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientInfo:
    """The client's address and user agent, as the API layer saw them."""

    ip: str | None = None
    user_agent: str | None = None
