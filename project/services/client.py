"""Facts about the calling client that use cases record."""

import ipaddress
from dataclasses import dataclass
from functools import lru_cache


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


# An IPv6 address with a zone id, with room to spare; longer text names no address, and
# bounding it bounds the memory of the cache below.
_LONGEST_ADDRESS = 100


def clean_ip(raw: str | None) -> str | None:
    """An address as kept: an IP address in canonical form, else None.

    With TRUSTED_PROXIES set the address comes from X-Forwarded-For, which a client can
    fill with anything; the columns hold at most 45 characters, an IPv6 address's longest.
    """
    if not raw or len(raw) > _LONGEST_ADDRESS:
        return None
    return _canonical_ip(raw)


# Every request parses its client's address; a worker sees the same few again and again.
@lru_cache(maxsize=4096)
def _canonical_ip(raw: str) -> str | None:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(raw.split("%", 1)[0])
    return str(address)
