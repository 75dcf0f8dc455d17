"""The ``ssl`` setting reaches every request: a local pool with a self-signed certificate is
reachable with an SSLContext that trusts it, and refused (without retries) otherwise."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from autogen_aca_sessions.client import SessionsClient, SessionsConnectionError
from tests.unit.conftest import FakeClock, FakePool


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_pool(tmp_path: Path) -> AsyncIterator[tuple[FakePool, Path]]:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    pool = FakePool()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", pool.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_context)
    pool.url = str(server.make_url("")).rstrip("/")
    try:
        yield pool, cert
    finally:
        await server.close()


async def test_ssl_context_trusting_the_pool_certificate_works(tls_pool: tuple[FakePool, Path]) -> None:
    pool, cert = tls_pool
    assert pool.endpoint.startswith("https://127.0.0.1:")
    pool.reply(json_body={"value": [{"name": "a"}]}, repeat=True)
    context = ssl.create_default_context(cafile=str(cert))
    async with SessionsClient(pool.endpoint, "t", ssl=context) as client:
        assert [f.name for f in await client.list_files("sess-1")] == ["a"]
    async with SessionsClient(pool.endpoint, "t", ssl=False) as client:
        assert [f.name for f in await client.list_files("sess-1")] == ["a"]
    assert pool.requests[0].raw == "/files?api-version=2025-10-02-preview&identifier=sess-1"


async def test_untrusted_certificate_fails_fast_without_retries(tls_pool: tuple[FakePool, Path]) -> None:
    pool, _ = tls_pool
    clock = FakeClock()
    client = SessionsClient(pool.endpoint, "t", max_retries=3, clock=clock)
    try:
        with pytest.raises(SessionsConnectionError, match="TLS error"):
            await client.list_files("sess-1")
    finally:
        await client.close()
    assert clock.sleeps == []
    assert pool.requests == []
