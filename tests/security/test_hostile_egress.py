"""Hostile clients of the egress proxy: smuggling, IP literals, SNI lies, giant heads, slowloris.

Each case talks to a sandbox's proxy socket the way the in-sandbox forwarder relays it, with
loopback servers as the outside world; "0 get out" means the world saw nothing it should not.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from autogen_aca_sessions.local.runtime.egress import EgressGateway, EgressPolicy, ProxyLimits
from tests.egress.world import World, gateway_for, https_get, raw_exchange, world_servers

ALLOW_API = EgressPolicy.from_wire(
    {"defaultAction": "Deny", "hostRules": [{"pattern": "api.test", "action": "Allow"}]}
)


def _smuggled(world: World) -> bool:
    return any(b"smuggled" in raw for raw in world.raw_bytes) or any("smuggled" in s.path for s in world.seen)


@pytest.mark.parametrize(
    "request_text",
    [
        # CL.TE and TE.CL: both framings at once.
        "POST http://api.test:{p}/a HTTP/1.1\r\nHost: api.test:{p}\r\nContent-Length: 6\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: other.test\r\n\r\n",
        # Two different lengths.
        "POST http://api.test:{p}/a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
        "hello GET /smuggled HTTP/1.1\r\n\r\n",
        # A coding list, an unknown coding, an obfuscated name.
        "POST http://api.test:{p}/a HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST http://api.test:{p}/a HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST http://api.test:{p}/a HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        # Obsolete folding, bare LF, NUL.
        "GET http://api.test:{p}/a HTTP/1.1\r\nX-A: 1\r\n smuggled: yes\r\n\r\n",
        "GET http://api.test:{p}/a HTTP/1.1\r\nX-A: 1\nHost: other.test\r\n\r\n",
        "GET http://api.test:{p}/a HTTP/1.1\r\nX-A: 1\x00smuggled\r\n\r\n",
        # The Host header disagrees with the target; user information in the target.
        "GET http://api.test:{p}/a HTTP/1.1\r\nHost: other.test\r\n\r\n",
        "GET http://api.test:{p}@other.test:{p}/smuggled HTTP/1.1\r\n\r\n",
        # A target that is not absolute; a second Host.
        "GET /smuggled HTTP/1.1\r\nHost: api.test\r\n\r\n",
        "GET http://api.test:{p}/a HTTP/1.1\r\nHost: api.test:{p}\r\nHost: other.test\r\n\r\n",
        # HTTP/0.9 and 2.0 request lines, and a chunked HTTP/1.0 body.
        "GET http://api.test:{p}/smuggled\r\n\r\n",
        "GET http://api.test:{p}/smuggled HTTP/2.0\r\n\r\n",
        "POST http://api.test:{p}/smuggled HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
)
async def test_ambiguous_framing_is_refused_and_nothing_is_forwarded(
    tmp_path: Path, request_text: str
) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        answer = await raw_exchange(
            attachment.socket_path, request_text.replace("{p}", str(world.http_port)).encode()
        )
        assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 505")
        assert world.seen == []
        assert not _smuggled(world)


async def test_bytes_after_a_chunked_body_are_never_forwarded(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        p = world.http_port
        answer = await raw_exchange(
            attachment.socket_path,
            (
                f"POST http://api.test:{p}/a HTTP/1.1\r\nHost: api.test:{p}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                "5;ext=1\r\nhello\r\n0\r\nX-Trailer: smuggled\r\n\r\n"
                f"GET http://other.test:{p}/smuggled HTTP/1.1\r\nHost: other.test:{p}\r\n\r\n"
            ).encode(),
        )
        assert answer.startswith(b"HTTP/1.1 200")
        assert [(s.path, s.body) for s in world.seen] == [("/a", b"hello")]
        assert not _smuggled(world)


async def test_bytes_after_a_content_length_body_are_never_forwarded(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        p = world.http_port
        answer = await raw_exchange(
            attachment.socket_path,
            (
                f"POST http://api.test:{p}/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                f"GET http://other.test:{p}/smuggled HTTP/1.1\r\n\r\n"
            ).encode(),
        )
        assert answer.startswith(b"HTTP/1.1 200")
        assert [(s.path, s.body) for s in world.seen] == [("/a", b"hello")]
        assert not _smuggled(world)


@pytest.mark.parametrize(
    "target", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "10.0.0.1", "169.254.169.254", "0.0.0.0", "[::]"]
)
async def test_connect_to_an_ip_literal_no_rule_names_is_refused(tmp_path: Path, target: str) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.from_wire({"defaultAction": "Allow"}))
        answer = await raw_exchange(
            attachment.socket_path, f"CONNECT {target}:{world.https_port} HTTP/1.1\r\n\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 403")
        assert b"IP literal" in answer
        answer = await raw_exchange(
            attachment.socket_path,
            f"GET http://{target}:{world.http_port}/smuggled HTTP/1.1\r\n\r\n".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 403")
        assert world.seen == []


@pytest.mark.parametrize("name", ["2130706433", "0x7f000001", "localhost", "127.1"])
async def test_names_that_resolve_to_this_machine_are_refused(tmp_path: Path, name: str) -> None:
    # The system resolver (as in production): numeric and local names that land on loopback.
    async with world_servers(tmp_path) as world:
        gateway = EgressGateway(tmp_path / "eg")
        try:
            attachment = await gateway.attach("sb", EgressPolicy.from_wire({"defaultAction": "Allow"}))
            answer = await raw_exchange(
                attachment.socket_path, f"CONNECT {name}:{world.https_port} HTTP/1.1\r\n\r\n".encode()
            )
            assert answer[:12] in (b"HTTP/1.1 403", b"HTTP/1.1 502")
            answer = await raw_exchange(
                attachment.socket_path,
                f"GET http://{name}:{world.http_port}/smuggled HTTP/1.1\r\n\r\n".encode(),
            )
            assert answer[:12] in (b"HTTP/1.1 403", b"HTTP/1.1 502")
        finally:
            await gateway.close()
        assert world.seen == []


async def test_sni_that_does_not_match_the_connect_host_is_cut(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await https_get(
                attachment.socket_path, world, connect_host="api.test", sni="other.test", path="/smuggled"
            )
        assert world.seen == []
        reason = gateway.decisions("sb").denied[0].reason
        assert "does not match the CONNECT host" in reason


async def test_tunnel_without_sni_or_without_tls_is_cut(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        p = world.https_port
        # Plain HTTP inside the tunnel.
        answer = await raw_exchange(
            attachment.socket_path,
            f"CONNECT api.test:{p} HTTP/1.1\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: api.test\r\n\r\n".encode(),
        )
        assert answer == b"HTTP/1.1 200 Connection Established\r\n\r\n"
        # TLS without a server name.
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await https_get(attachment.socket_path, world, connect_host="api.test", sni="", path="/smuggled")
        assert world.seen == []
        reasons = [d.reason for d in gateway.decisions("sb").denied]
        assert any("not TLS" in r for r in reasons)
        assert any("names no server" in r for r in reasons)


async def test_giant_request_heads_get_431_and_nothing_out(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        p = world.http_port
        big_header = f"GET http://api.test:{p}/smuggled HTTP/1.1\r\nX-Big: {'a' * 2_000_000}\r\n\r\n"
        many_headers = f"GET http://api.test:{p}/smuggled HTTP/1.1\r\n" + "X-A: 1\r\n" * 200 + "\r\n"
        long_line = f"GET http://api.test:{p}/{'s' * 100_000} HTTP/1.1\r\n\r\n"
        for text in (big_header, many_headers, long_line):
            answer = await raw_exchange(attachment.socket_path, text.encode())
            assert answer.startswith(b"HTTP/1.1 431")
        assert world.seen == []


async def test_non_utf8_and_control_bytes_get_a_clear_400(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", ALLOW_API)
        p = world.http_port
        for data in (
            f"GET http://api.test:{p}/\xff\xfe HTTP/1.1\r\n\r\n".encode("latin-1"),
            f"GET http://api.t\xe9st:{p}/ HTTP/1.1\r\n\r\n".encode("latin-1"),
            f"CONNECT api.test:{p}\x7f HTTP/1.1\r\n\r\n".encode("latin-1"),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ):
            answer = await raw_exchange(attachment.socket_path, data)
            assert answer.startswith(b"HTTP/1.1 400")
        assert world.seen == []


async def test_slowloris_heads_and_hellos_are_closed(tmp_path: Path) -> None:
    limits = ProxyLimits(head_seconds=0.3, hello_seconds=0.3)
    async with (
        world_servers(tmp_path) as world,
        gateway_for(world, tmp_path / "eg", limits=limits) as gateway,
    ):
        attachment = await gateway.attach("sb", ALLOW_API)
        p = world.https_port
        # A head that never ends: the proxy answers 408 and closes (the read returns, no hang).
        reader, writer = await asyncio.open_unix_connection(str(attachment.socket_path))
        writer.write(f"GET http://api.test:{p}/smuggled HTTP/1.1\r\nX-A: ".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(-1), 60)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        # A ClientHello that never ends.
        reader, writer = await asyncio.open_unix_connection(str(attachment.socket_path))
        writer.write(f"CONNECT api.test:{p} HTTP/1.1\r\n\r\n".encode() + b"\x16\x03\x01\x00\x80\x01")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(-1), 60)
        writer.close()
        assert answer == b"HTTP/1.1 200 Connection Established\r\n\r\n"
        assert world.seen == []
        assert gateway.decisions("sb").denied[0].reason == "no ClientHello in time"


async def test_connections_beyond_the_cap_get_503_with_retry_after(tmp_path: Path) -> None:
    limits = ProxyLimits(max_connections_per_sandbox=4)
    async with (
        world_servers(tmp_path) as world,
        gateway_for(world, tmp_path / "eg", limits=limits) as gateway,
    ):
        attachment = await gateway.attach("sb", ALLOW_API)
        held = [await asyncio.open_unix_connection(str(attachment.socket_path)) for _ in range(4)]
        for _, writer in held:
            writer.write(b"GET http://api.test")  # an unfinished head keeps each one open
            await writer.drain()
        answer = await raw_exchange(attachment.socket_path, b"GET http://api.test/ HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in answer
        for _, writer in held:
            writer.close()
        assert world.seen == []


async def test_connections_beyond_the_gateway_cap_get_503_in_every_sandbox(tmp_path: Path) -> None:
    limits = ProxyLimits(max_connections_per_sandbox=10, max_connections=3)
    async with (
        world_servers(tmp_path) as world,
        gateway_for(world, tmp_path / "eg", limits=limits) as gateway,
    ):
        first = await gateway.attach("a", ALLOW_API)
        second = await gateway.attach("b", ALLOW_API)
        held = [await asyncio.open_unix_connection(str(first.socket_path)) for _ in range(3)]
        for _, writer in held:
            writer.write(b"GET http://api.test")
            await writer.drain()
        answer = await raw_exchange(second.socket_path, b"GET http://api.test/ HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"connection limit" in answer
        for _, writer in held:
            writer.close()
        assert world.seen == []


async def test_a_connection_flood_beyond_the_caps_is_ended_without_waiting_for_heads(
    tmp_path: Path,
) -> None:
    limits = ProxyLimits(max_connections_per_sandbox=2, max_lingering=4)
    async with (
        world_servers(tmp_path) as world,
        gateway_for(world, tmp_path / "eg", limits=limits) as gateway,
    ):
        attachment = await gateway.attach("sb", ALLOW_API)
        flood = [await asyncio.open_unix_connection(str(attachment.socket_path)) for _ in range(40)]
        for _, writer in flood:
            writer.write(b"GET http://api.test")  # never finished: the two admitted ones wait
        # Every connection beyond the caps ends (503 or closed at once); none waits for its head.
        ended = await asyncio.gather(
            *(asyncio.wait_for(reader.read(-1), 60) for reader, _ in flood[2:]), return_exceptions=True
        )
        assert all(not isinstance(e, asyncio.TimeoutError) for e in ended)
        for _, writer in flood:
            writer.close()
        assert world.seen == []
