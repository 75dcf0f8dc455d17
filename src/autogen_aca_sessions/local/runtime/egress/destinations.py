"""Where the proxy may connect: name resolution (done here, never in the sandbox) and the guard.

The guard refuses, whatever the policy says: the local server's own ports on this machine,
and any address that is not globally routable (loopback, private, link-local, multicast,
unspecified, reserved) unless the deciding rule names that exact IP literal, or the name
was mapped by a :class:`StaticResolver` (which only tests construct: no CLI flag, option or
wire field reaches it). A name that public DNS resolves to 127.0.0.1 is therefore refused
(no DNS rebinding onto the host's services).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from typing import Protocol

__all__ = [
    "DestinationGuard",
    "IPAddress",
    "ResolveError",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "is_local_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ResolveError(Exception):
    """The name has no address (the proxy answers 502)."""


class Resolver(Protocol):
    """Turns a host name into addresses for the proxy."""

    @property
    def explicit(self) -> bool:
        """Whether its answers are explicit mappings (tests) that may point at this machine."""
        ...

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host``, best first; raises :class:`ResolveError`."""
        ...


class SystemResolver:
    """The host's resolver, through the event loop's executor (never blocks the loop)."""

    explicit = False

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host`` (IPv4 first)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as exc:
            raise ResolveError(f"{host} does not resolve ({exc})") from exc
        found: list[IPAddress] = []
        for _family, _, _, _, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0])
            if address not in found:
                found.append(address)
        found.sort(key=lambda a: a.version)
        if not found:
            raise ResolveError(f"{host} has no address")
        return found


class StaticResolver:
    """A fixed name → address table: the test-only override (maps test names to 127.0.0.1 servers)."""

    explicit = True

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = {name.lower(): ipaddress.ip_address(address) for name, address in table.items()}

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The mapped address; any other name does not resolve (nothing leaks to real DNS)."""
        address = self._table.get(host.lower())
        if address is None:
            raise ResolveError(f"{host} does not resolve")
        return [address]


def is_local_address(address: IPAddress) -> bool:
    """Whether ``address`` belongs to one of this machine's interfaces (a public address of
    the host included): only such an address can be bound. A non-blocking system call."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class DestinationGuard:
    """The addresses and ports the proxy never connects to."""

    def __init__(self, protected_ports: Iterable[int] = ()) -> None:
        self._protected: set[int] = set(protected_ports)

    def protect(self, port: int) -> None:
        """Never reach ``port`` on this machine (the server's data plane, ARM, MCP listeners)."""
        self._protected.add(port)

    @property
    def protected_ports(self) -> frozenset[int]:
        """The ports refused on this machine's addresses."""
        return frozenset(self._protected)

    def refusal(self, address: IPAddress, port: int, *, explicit: bool) -> str | None:
        """Why connecting to ``address:port`` is refused, or ``None`` when it may go."""
        address = _unmapped(address)
        internal = not address.is_global or address.is_multicast
        # The host's own public addresses count too: a server listening on 0.0.0.0 must not be
        # reached through a name that resolves to the machine's public address.
        if port in self._protected and (internal or is_local_address(address)):
            return f"{address}:{port} is one of the local server's own ports and is never reachable"
        if address.is_unspecified or address.is_multicast:
            return f"{address} is not a destination"
        if internal and not explicit:
            return (
                f"{address} is an internal address (loopback, private or link-local); only a rule "
                "naming that exact IP literal reaches it"
            )
        return None
