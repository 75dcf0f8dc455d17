"""Reading the TLS ClientHello that opens a ``CONNECT`` tunnel, to check its SNI against the host.

Only parsing, no TLS: the bytes read are kept and replayed upstream untouched. Anything that
is not a well-formed ClientHello (plain TCP, SSH, HTTP inside a tunnel, truncated or
oversized records) is refused, so a tunnel carries TLS to the host it was opened for or nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = ["MAX_CLIENT_HELLO", "ClientHello", "NotTLSError", "parse_client_hello", "read_client_hello"]

MAX_CLIENT_HELLO = 64 * 1024
"""Largest ClientHello read (a few records; post-quantum key shares make them ~2 KiB)."""
_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME = 0x0000


class NotTLSError(ValueError):
    """The tunnel did not start with a well-formed TLS ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    """What was read: the raw records (to replay) and the server name asked for."""

    raw: bytes
    """Every byte read from the client, to send upstream first."""
    server_name: str | None
    """The SNI host name (lower case), or ``None`` when the client sent none."""


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NotTLSError("truncated ClientHello")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.number(length_bytes))


def parse_client_hello(handshake: bytes) -> str | None:
    """The SNI of a ClientHello handshake message (type, length and body), or ``None``."""
    cursor = _Cursor(handshake)
    if cursor.number(1) != _CLIENT_HELLO:
        raise NotTLSError("the first handshake message is not a ClientHello")
    body = _Cursor(cursor.take(cursor.number(3)))
    body.take(2 + 32)  # legacy_version, random
    body.vector(1)  # session id
    body.vector(2)  # cipher suites
    body.vector(1)  # compression methods
    if body.pos == len(body.data):
        return None  # no extensions at all
    extensions = _Cursor(body.vector(2))
    found: str | None = None
    while extensions.pos < len(extensions.data):
        kind = extensions.number(2)
        data = extensions.vector(2)
        if kind != _SERVER_NAME:
            continue
        if found is not None:
            raise NotTLSError("two server_name extensions")
        names = _Cursor(_Cursor(data).vector(2))
        while names.pos < len(names.data):
            name_type = names.number(1)
            name = names.vector(2)
            if name_type != 0:
                continue
            if found is not None:
                raise NotTLSError("two host names in server_name")
            try:
                text = name.decode("ascii")
            except UnicodeDecodeError as exc:
                raise NotTLSError("the server name is not ASCII") from exc
            if not text or any(c in text for c in "\0/\\ ") or len(text) > 253:
                raise NotTLSError("the server name is not a host name")
            found = text.lower().rstrip(".")
    return found


async def read_client_hello(reader: asyncio.StreamReader, *, limit: int = MAX_CLIENT_HELLO) -> ClientHello:
    """Read TLS records until the ClientHello is whole; raises :class:`NotTLSError` otherwise.

    The caller bounds the time this takes (a client that stalls mid-record is a slowloris).
    """
    raw = bytearray()
    handshake = bytearray()
    needed: int | None = None
    while needed is None or len(handshake) < needed:
        try:
            header = await reader.readexactly(5)
        except asyncio.IncompleteReadError as exc:
            raise NotTLSError("the client closed before a whole ClientHello") from exc
        if header[0] != _HANDSHAKE or header[1] != 0x03:
            raise NotTLSError("the tunnel does not start with a TLS handshake")
        length = int.from_bytes(header[3:5], "big")
        if length == 0 or length > 16384 + 2048 or len(raw) + 5 + length > limit:
            raise NotTLSError("a TLS record of an impossible size")
        try:
            fragment = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise NotTLSError("the client closed before a whole ClientHello") from exc
        raw += header + fragment
        handshake += fragment
        if needed is None and len(handshake) >= 4:
            needed = 4 + int.from_bytes(handshake[1:4], "big")
            if needed > limit:
                raise NotTLSError("a ClientHello larger than the proxy reads")
    return ClientHello(bytes(raw), parse_client_hello(bytes(handshake[:needed])))
