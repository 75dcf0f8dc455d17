"""The "outside world" of the egress tests: HTTP and HTTPS servers on 127.0.0.1, a test CA,
and clients that talk to a gateway's socket directly (no namespace) the way a forwarder does."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from autogen_aca_sessions.local.runtime.egress import EgressGateway, ProxyLimits, StaticResolver

WORLD_NAMES = ("api.test", "other.test", "sub.api.test")
"""The names the test resolver maps to the world's servers."""


@dataclass
class Seen:
    """One request the world received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    raw: bytes


@dataclass
class World:
    """The servers and what they saw."""

    http_port: int
    https_port: int
    ca_file: Path
    seen: list[Seen] = field(default_factory=list)
    raw_bytes: list[bytes] = field(default_factory=list)
    """Everything each connection sent, whole (to prove nothing extra was smuggled through)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def resolver(self) -> StaticResolver:
        return StaticResolver(dict.fromkeys(WORLD_NAMES, "127.0.0.1"))


def big_body(size: int) -> bytes:
    """``size`` bytes of a pattern that shows any lost, repeated or reordered block."""
    block = bytes(range(256)) * 256  # 64 KiB
    whole = b"".join(i.to_bytes(4, "big") + block[4:] for i in range(size // len(block) + 1))
    return whole[:size]


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egress test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in WORLD_NAMES]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "cert.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


async def _serve_http(world: World, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    raw = bytearray()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        raw += head
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
        raw += body
        world.seen.append(Seen(method, path, headers, body, bytes(raw)))
        world.arrived.set()
        reply = f"hello {method} {path}".encode()
        if path.startswith("/big/"):
            reply = big_body(int(path[5:]))
        elif path == "/echo-length":
            reply = str(len(body)).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(reply)}\r\n\r\n".encode()
            + reply
        )
        await writer.drain()
        # Whatever else the connection carries is kept: a smuggled request would show here.
        with contextlib.suppress(Exception):
            raw += await asyncio.wait_for(reader.read(65536), 0.2)
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
        pass
    finally:
        world.raw_bytes.append(bytes(raw))
        writer.close()


@contextlib.asynccontextmanager
async def world_servers(directory: Path) -> AsyncIterator[World]:
    """HTTP and HTTPS servers on 127.0.0.1 that record every request."""
    ca_file, cert_file, key_file = _certificates(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    world = World(0, 0, ca_file)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_http(world, reader, writer)

    plain = await asyncio.start_server(serve, "127.0.0.1", 0)
    secure = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    world.http_port = plain.sockets[0].getsockname()[1]
    world.https_port = secure.sockets[0].getsockname()[1]
    try:
        yield world
    finally:
        plain.close()
        secure.close()


@contextlib.asynccontextmanager
async def gateway_for(
    world: World, root: Path, *, limits: ProxyLimits | None = None
) -> AsyncIterator[EgressGateway]:
    """A gateway whose resolver maps the world's names to 127.0.0.1."""
    gateway = EgressGateway(root, resolver=world.resolver(), limits=limits)
    try:
        yield gateway
    finally:
        await gateway.close()


async def raw_exchange(socket_path: Path, data: bytes) -> bytes:
    """Send ``data`` on a fresh proxy connection and read until the proxy closes it."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read(-1)
    finally:
        writer.close()


async def https_get(
    socket_path: Path, world: World, *, connect_host: str, sni: str, path: str = "/"
) -> bytes:
    """CONNECT ``connect_host`` and GET ``path`` over TLS with ``sni``; the whole answer."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(f"CONNECT {connect_host}:{world.https_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readuntil(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 200"):
            return status + await reader.read(-1)
        context = ssl.create_default_context(cafile=str(world.ca_file))
        context.check_hostname = False  # the SNI mismatch cases send names the cert lacks
        await writer.start_tls(context, server_hostname=sni)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return await reader.read(-1)
    finally:
        writer.close()
