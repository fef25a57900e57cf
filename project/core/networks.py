"""The client key per-address limits count under: an IPv6 client's network, an IPv4 address."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from project.core.settings import current_settings


def address_key(ip: str | None) -> str:
    """The key a client address counts under in every per-address limit and throttle.

    One IPv6 subscriber holds a whole /64 (RATELIMIT_IPV6_PREFIX) and can send from any
    address in it: counted per address, it would be endless clients.
    """
    if not ip:
        return "-"
    return _network(ip, current_settings().RATELIMIT_IPV6_PREFIX)


# Every limited request computes its key; a worker sees the same few addresses again and again.
@lru_cache(maxsize=4096)
def _network(ip: str, prefix: int) -> str:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, prefix), strict=False))
    return str(address)
