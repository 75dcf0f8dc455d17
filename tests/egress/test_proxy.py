"""The egress proxy against real loopback HTTP and HTTPS servers, through a sandbox's Unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autogen_aca_sessions.local.runtime.egress import EgressPolicy

from .world import gateway_for, https_get, raw_exchange, world_servers

ALLOW_API = {"defaultAction": "Deny", "hostRules": [{"pattern": "api.test", "action": "Allow"}]}


def _get(world_port: int, host: str = "api.test", path: str = "/x", extra: str = "") -> bytes:
    return (
        f"GET http://{host}:{world_port}{path} HTTP/1.1\r\nHost: {host}:{world_port}\r\n{extra}\r\n".encode()
    )


async def test_denied_host_gets_403_with_reason_and_is_logged(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", EgressPolicy.from_wire(ALLOW_API))
        answer = await raw_exchange(attachment.socket_path, _get(world.http_port, "other.test"))
        assert answer.startswith(b"HTTP/1.1 403 ")
        assert b"other.test is not allowed" in answer
        assert world.seen == []
        log = gateway.decisions("sb1").to_wire()
        denied = log["networkEgress"]["denied"]
        assert denied[0]["host"] == "other.test"
        assert denied[0]["scheme"] == "http"
        assert log["http"] == log["networkEgress"]


async def test_allowed_plain_http_reaches_the_server(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", EgressPolicy.from_wire(ALLOW_API))
        answer = await raw_exchange(attachment.socket_path, _get(world.http_port, path="/hello?q=1"))
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert answer.endswith(b"hello GET /hello?q=1")
        allowed = gateway.decisions("sb1").to_wire()["networkEgress"]["allowed"]
        assert allowed[0]["path"] == "/hello?q=1"
        assert allowed[0]["matchedRule"] == "hostRules[0]:api.test"


async def test_allowed_https_tunnel_carries_tls_to_the_server(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", EgressPolicy.from_wire(ALLOW_API))
        answer = await https_get(attachment.socket_path, world, connect_host="api.test", sni="api.test")
        assert answer.startswith(b"HTTP/1.1 200 OK")
        entry = gateway.decisions("sb1").to_wire()["networkEgress"]["allowed"][0]
        assert entry["scheme"] == "https"
        assert entry["method"] == "CONNECT"


async def test_transform_adds_secret_header_to_plain_http(tmp_path: Path) -> None:
    policy = EgressPolicy.from_wire(
        {
            "defaultAction": "Deny",
            "rules": [
                {
                    "name": "api-key",
                    "match": {"host": "api.test", "scheme": "http"},
                    "action": {
                        "type": "Transform",
                        "headers": [
                            {
                                "operation": "Set",
                                "name": "Authorization",
                                "valueRef": {"secretRef": {"secretId": "s1", "format": "Bearer {value}"}},
                            },
                            {"operation": "Remove", "name": "X-Drop"},
                        ],
                    },
                }
            ],
        }
    )
    secrets = {("s1", None): "top-secret-value"}
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", policy, secrets=lambda i, k: secrets.get((i, k)))
        answer = await raw_exchange(
            attachment.socket_path,
            _get(world.http_port, extra="Authorization: mine\r\nX-Drop: 1\r\nX-Keep: 2\r\n"),
        )
        assert answer.startswith(b"HTTP/1.1 200")
        seen = world.seen[0]
        assert seen.headers["authorization"] == "Bearer top-secret-value"
        assert "x-drop" not in seen.headers
        assert seen.headers["x-keep"] == "2"
        assert b"top-secret-value" not in answer
        assert gateway.decisions("sb1").allowed[0].action == "Transform"


async def test_transform_with_missing_secret_fails_closed(tmp_path: Path) -> None:
    policy = EgressPolicy.from_wire(
        {
            "rules": [
                {
                    "match": {"host": "api.test"},
                    "action": {
                        "type": "Transform",
                        "headers": [{"name": "X-Key", "valueRef": {"secretRef": {"secretId": "gone"}}}],
                    },
                }
            ]
        }
    )
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", policy, secrets=lambda i, k: None)
        answer = await raw_exchange(attachment.socket_path, _get(world.http_port))
        assert answer.startswith(b"HTTP/1.1 403")
        assert b"'gone'" in answer
        assert world.seen == []


async def test_transform_rule_denies_https_instead_of_going_out_without_its_header(tmp_path: Path) -> None:
    policy = EgressPolicy.from_wire(
        {
            "rules": [
                {
                    "match": {"host": "api.test"},
                    "action": {"type": "Transform", "headers": [{"name": "X-Key", "value": "v"}]},
                }
            ]
        }
    )
    assert any("HTTPS" in w for w in policy.to_wire()["validationWarnings"])
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", policy)
        answer = await https_get(attachment.socket_path, world, connect_host="api.test", sni="api.test")
        assert answer.startswith(b"HTTP/1.1 403")
        assert b"cannot be applied to HTTPS" in answer
        assert world.seen == []


async def test_audit_mode_lets_through_and_logs_as_denied(tmp_path: Path) -> None:
    policy = EgressPolicy.from_wire({"http": {"defaultAction": "Deny", "enforcementMode": "Audit"}})
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", policy)
        answer = await raw_exchange(attachment.socket_path, _get(world.http_port, "other.test"))
        assert answer.startswith(b"HTTP/1.1 200")
        log = gateway.decisions("sb1")
        assert log.allowed == []
        assert log.denied[0].host == "other.test"
        assert log.denied[0].action == "Audit"


async def test_policy_change_applies_to_the_next_request(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", EgressPolicy.deny_all())
        first = await raw_exchange(attachment.socket_path, _get(world.http_port))
        gateway.update_policy("sb1", EgressPolicy.from_wire(ALLOW_API))
        second = await raw_exchange(attachment.socket_path, _get(world.http_port))
        gateway.update_policy("sb1", EgressPolicy.deny_all())
        third = await raw_exchange(attachment.socket_path, _get(world.http_port))
        assert (first[:12], second[:12], third[:12]) == (b"HTTP/1.1 403", b"HTTP/1.1 200", b"HTTP/1.1 403")
        assert len(world.seen) == 1


async def test_decisions_are_the_last_fifty_newest_first(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", EgressPolicy.deny_all())
        for i in range(55):
            await raw_exchange(attachment.socket_path, _get(world.http_port, path=f"/{i}"))
        denied = gateway.decisions("sb1").to_wire()["networkEgress"]["denied"]
        assert len(denied) == 50
        assert denied[0]["path"] == "/54"
        assert denied[-1]["path"] == "/5"


async def test_protected_server_port_is_refused_even_when_a_rule_allows_it(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        gateway.protect(world.http_port)  # stands in for the server's data-plane port
        policy = EgressPolicy.from_wire(
            {"defaultAction": "Allow", "hostRules": [{"pattern": "127.0.0.1", "action": "Allow"}]}
        )
        attachment = await gateway.attach("sb1", policy)
        by_name = await raw_exchange(attachment.socket_path, _get(world.http_port))
        by_ip = await raw_exchange(attachment.socket_path, _get(world.http_port, "127.0.0.1"))
        assert by_name.startswith(b"HTTP/1.1 403")
        assert b"own ports" in by_name
        assert by_ip.startswith(b"HTTP/1.1 403")
        assert b"own ports" in by_ip
        assert world.seen == []


async def test_policies_of_two_sandboxes_are_separate(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        open_one = await gateway.attach("open", EgressPolicy.from_wire(ALLOW_API))
        closed_one = await gateway.attach("closed", EgressPolicy.deny_all())
        a, b = await asyncio.gather(
            raw_exchange(open_one.socket_path, _get(world.http_port)),
            raw_exchange(closed_one.socket_path, _get(world.http_port)),
        )
        assert a.startswith(b"HTTP/1.1 200")
        assert b.startswith(b"HTTP/1.1 403")
        assert gateway.decisions("closed").allowed == []


async def test_a_rule_naming_an_ip_literal_opens_exactly_that_literal(tmp_path: Path) -> None:
    policy = EgressPolicy.from_wire({"hostRules": [{"pattern": "127.0.0.1", "action": "Allow"}]})
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", policy)
        # Python sends no SNI for an IP address: allowed for an IP-literal CONNECT a rule names.
        answer = await https_get(attachment.socket_path, world, connect_host="127.0.0.1", sni="127.0.0.1")
        assert answer.startswith(b"HTTP/1.1 200 OK")
        other = await raw_exchange(
            attachment.socket_path, f"CONNECT 127.0.0.2:{world.https_port} HTTP/1.1\r\n\r\n".encode()
        )
        assert other.startswith(b"HTTP/1.1 403")


async def test_attach_refuses_ids_that_cannot_make_a_socket_path(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        for bad, why in (
            ("", "cannot name"),
            ("a/b", "cannot name"),
            ("..", "cannot name"),
            ("x" * 200, "longer"),
        ):
            with pytest.raises(ValueError, match=why):
                await gateway.attach(bad, EgressPolicy.deny_all())
        await gateway.attach("ok", EgressPolicy.deny_all())
        with pytest.raises(ValueError, match="already attached"):
            await gateway.attach("ok", EgressPolicy.deny_all())


async def test_expect_100_continue_is_answered_by_the_proxy_and_the_body_goes_out(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb1", EgressPolicy.from_wire(ALLOW_API))
        reader, writer = await asyncio.open_unix_connection(str(attachment.socket_path))
        p = world.http_port
        head = f"PUT http://api.test:{p}/up HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        writer.write(head.encode())
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)  # a hang guard, not a timing
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        answer = await reader.read(-1)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert world.seen[0].body == b"hello"
        assert "expect" not in world.seen[0].headers
