"""Which addresses only this machine can reach: the one loopback check of the pool and the CLI."""

from __future__ import annotations

import ipaddress

__all__ = ["WILDCARD_HOSTS", "is_loopback_host"]

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
"""Addresses that bind every interface (reachable on loopback too, and from elsewhere)."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``[::1]`` and ``::1`` alike)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name may resolve to anything
