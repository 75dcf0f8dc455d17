"""Strict HTTP/1.1 request heads and bodies for the egress proxy.

Strict on purpose: anything two HTTP parsers could read differently (both ``Content-Length``
and ``Transfer-Encoding``, repeated lengths, obsolete line folding, bare CR or LF, a space
before the colon, a ``Host`` that disagrees with the target) is refused with 400 rather than
forwarded, so a request cannot smuggle a second one past the policy. Bodies are relayed by
their exact framing and nothing after them is read from the client.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from ._timeouts import within
from .policy import normalize_host

__all__ = [
    "BodyFraming",
    "HttpError",
    "RequestHead",
    "Target",
    "parse_authority",
    "parse_request_head",
    "relay_body",
]

MAX_HEADERS = 100
"""Most header lines in a request head."""
_MAX_CHUNK_LINE = 1024
"""Longest chunk-size line."""
_TOKEN_EXTRA = frozenset("!#$%&'*+-.^_`|~")


class HttpError(Exception):
    """A request the proxy refuses; carries the status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        """The status sent back."""
        self.reason = reason
        """Why, for the body and the log."""


class BodyFraming(enum.Enum):
    """How a request body is delimited."""

    NONE = "none"
    """No body."""
    LENGTH = "length"
    """``Content-Length`` bytes."""
    CHUNKED = "chunked"
    """``Transfer-Encoding: chunked``."""


@dataclass(frozen=True)
class Target:
    """Where a request goes."""

    host: str
    """Normalised host (lower case, IPv6 without brackets)."""
    port: int
    """TCP port."""
    path: str
    """Path and query (``/`` at least) for plain HTTP; empty for CONNECT."""


@dataclass(frozen=True)
class RequestHead:
    """A parsed request line and headers."""

    method: str
    """The method, as sent."""
    target: Target
    """Host, port and path."""
    version: str
    """``HTTP/1.1`` or ``HTTP/1.0``."""
    headers: list[tuple[str, str]]
    """Header lines in order (names as sent, values without surrounding blanks)."""
    framing: BodyFraming
    """How the body is delimited."""
    content_length: int
    """The body's length when ``framing`` is ``LENGTH``."""

    @property
    def expects_continue(self) -> bool:
        """Whether the client waits for ``100 Continue`` before sending its body."""
        return any(n.lower() == "expect" and v.lower() == "100-continue" for n, v in self.headers)

    @property
    def is_connect(self) -> bool:
        """Whether this opens a tunnel."""
        return self.method == "CONNECT"


def _is_token(text: str) -> bool:
    return bool(text) and text.isascii() and all(c.isalnum() or c in _TOKEN_EXTRA for c in text)


def _check_host(host: str) -> str:
    host = normalize_host(host)
    if not host or len(host) > 253 or not host.isascii():
        raise HttpError(400, "the target host is not a host name")
    if ":" in host:  # an IPv6 literal, already unbracketed
        if not all(c in "0123456789abcdef:." for c in host):
            raise HttpError(400, "the target host is not a host name")
        return host
    if not all(c.isalnum() or c in "-._" for c in host) or ".." in host:
        raise HttpError(400, "the target host is not a host name")
    return host


def parse_authority(authority: str, *, default_port: int | None) -> tuple[str, int]:
    """``host[:port]`` or ``[v6][:port]`` as (normalised host, port)."""
    if "@" in authority or not authority:
        raise HttpError(400, "the target must be host:port without user information")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise HttpError(400, "an unclosed IPv6 literal in the target")
        host, rest = authority[: end + 1], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise HttpError(400, "garbage after the IPv6 literal in the target")
    else:
        host, sep, port_text_raw = authority.rpartition(":")
        if not sep:
            host, port_text = authority, None
        else:
            port_text = port_text_raw
    if port_text is None:
        if default_port is None:
            raise HttpError(400, "CONNECT needs host:port")
        port = default_port
    else:
        if not port_text.isdigit() or len(port_text) > 5:
            raise HttpError(400, "the target port is not a number")
        port = int(port_text)
        if not 0 < port < 65536:
            raise HttpError(400, "the target port is out of range")
    return _check_host(host), port


def _parse_target(method: str, raw: str) -> Target:
    if method == "CONNECT":
        host, port = parse_authority(raw, default_port=None)
        return Target(host, port, "")
    lowered = raw[:8].lower()
    if lowered.startswith("https://"):
        raise HttpError(400, "send https:// requests through CONNECT (set HTTPS_PROXY), not as plain HTTP")
    if not lowered.startswith("http://"):
        raise HttpError(400, "a proxy request needs an absolute http:// target")
    rest = raw[7:]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if "#" in path:
        raise HttpError(400, "a fragment in the request target")
    if not path.startswith("/"):
        path = "/" + path
    host, port = parse_authority(authority, default_port=80)
    return Target(host, port, path)


def _content_length(values: list[str]) -> int:
    if len(set(values)) != 1:
        raise HttpError(400, "conflicting Content-Length headers")
    text = values[0]
    if "," in text:
        parts = {p.strip() for p in text.split(",")}
        if len(parts) != 1:
            raise HttpError(400, "conflicting Content-Length values")
        text = parts.pop()
    if not text.isdigit() or not text.isascii() or len(text) > 15:
        raise HttpError(400, "Content-Length is not a number")
    return int(text)


def parse_request_head(data: bytes) -> RequestHead:
    """Parse a head ending in CRLF CRLF (raises :class:`HttpError` on anything ambiguous)."""
    text = data.decode("latin-1")
    lines = text[:-4].split("\r\n") if text.endswith("\r\n\r\n") else None
    if lines is None:
        raise HttpError(400, "the request head does not end with CRLF CRLF")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header lines")
    request_line = lines[0]
    if any(c in text for c in "\0") or any("\r" in line or "\n" in line for line in lines):
        raise HttpError(400, "bare CR, LF or NUL in the request head")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise HttpError(400, "the request line is not METHOD SP target SP version")
    method, raw_target, version = parts
    if not _is_token(method):
        raise HttpError(400, "the method is not a token")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "only HTTP/1.1 and HTTP/1.0 are spoken here")
    if not raw_target.isascii() or not raw_target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw_target):
        raise HttpError(400, "the request target has characters it may not have")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise HttpError(400, "obsolete line folding in the request head")
        name, sep, value = line.partition(":")
        if not sep or not _is_token(name):
            raise HttpError(400, "a header line is not name: value")
        value = value.strip(" \t")
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise HttpError(400, "control characters in a header value")
        headers.append((name, value))
    target = _parse_target(method, raw_target)
    lengths = [v for n, v in headers if n.lower() == "content-length"]
    codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
    hosts = [v for n, v in headers if n.lower() == "host"]
    if len(hosts) > 1:
        raise HttpError(400, "more than one Host header")
    if hosts and method != "CONNECT":
        try:
            host, port = parse_authority(hosts[0], default_port=80)
        except HttpError as exc:
            raise HttpError(400, "the Host header is not host[:port]") from exc
        if (host, port) != (target.host, target.port):
            raise HttpError(400, "the Host header does not match the request target")
    framing, length = BodyFraming.NONE, 0
    if codings:
        if lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if version != "HTTP/1.1" or len(codings) != 1 or codings[0].strip().lower() != "chunked":
            raise HttpError(400, "only a single Transfer-Encoding: chunked is accepted")
        framing = BodyFraming.CHUNKED
    elif lengths:
        length = _content_length(lengths)
        framing = BodyFraming.LENGTH if length else BodyFraming.NONE
    if method == "CONNECT" and framing is not BodyFraming.NONE:
        raise HttpError(400, "a CONNECT request has no body")
    return RequestHead(method, target, version, headers, framing, length)


async def _copy_exact(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int, idle_seconds: float
) -> None:
    while count:
        chunk = await within(reader.read(min(count, 65536)), idle_seconds)
        if not chunk:
            raise HttpError(400, "the client closed before the whole body")
        count -= len(chunk)
        writer.write(chunk)
        await writer.drain()


async def relay_body(
    head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, idle_seconds: float
) -> None:
    """Copy exactly the body ``head`` announces from ``reader`` to ``writer``.

    Chunked bodies are re-framed chunk by chunk (extensions and trailers dropped), so
    nothing the client sends after the last chunk is ever forwarded.
    """
    if head.framing is BodyFraming.LENGTH:
        await _copy_exact(reader, writer, head.content_length, idle_seconds)
        return
    if head.framing is not BodyFraming.CHUNKED:
        return
    while True:
        try:
            line = await within(reader.readuntil(b"\r\n"), idle_seconds)
        except asyncio.LimitOverrunError as exc:
            raise HttpError(400, "a chunk-size line is too long") from exc
        except asyncio.IncompleteReadError as exc:
            raise HttpError(400, "the client closed inside the chunked body") from exc
        if len(line) > _MAX_CHUNK_LINE:
            raise HttpError(400, "a chunk-size line is too long")
        size_text = line[:-2].split(b";", 1)[0].strip(b" \t")
        if not size_text or len(size_text) > 15 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise HttpError(400, "a chunk size is not hexadecimal")
        size = int(size_text, 16)
        if size == 0:
            break
        writer.write(b"%x\r\n" % size)
        await _copy_exact(reader, writer, size, idle_seconds)
        try:
            crlf = await within(reader.readexactly(2), idle_seconds)
        except asyncio.IncompleteReadError as exc:
            raise HttpError(400, "the client closed inside the chunked body") from exc
        if crlf != b"\r\n":
            raise HttpError(400, "a chunk does not end with CRLF")
        writer.write(b"\r\n")
    # Trailers are read (bounded) and dropped: they could carry headers past the Transform.
    for _ in range(MAX_HEADERS + 1):
        try:
            trailer = await within(reader.readuntil(b"\r\n"), idle_seconds)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError) as exc:
            raise HttpError(400, "the chunked body's trailer is malformed") from exc
        if trailer == b"\r\n":
            break
    else:
        raise HttpError(400, "too many trailer lines")
    writer.write(b"0\r\n\r\n")
    await writer.drain()
