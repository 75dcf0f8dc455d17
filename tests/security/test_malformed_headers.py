"""Malformed bytes in every header, query string and path segment the server reads, on every
surface (data plane, ARM, MCP), sent with a raw socket so that nothing cleans them up on the way.

Each gets a 4xx where the header decides the answer (401, 403, 404, 406, 400), the usual answer
where the server ignores a value it cannot use (a bad ``traceparent``), and never a 5xx; the
server logs no WARNING or ERROR and no traceback for any of them, and at most one line besides the
access log's (issue 22, item 1: these requests come before authentication, so anyone who can reach
the port could otherwise fill the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer, PoolConfig
from autogen_aca_sessions.local.config import SandboxMode
from autogen_aca_sessions.local.frontends.access_log import ACCESS_LOGGER
from autogen_aca_sessions.local.frontends.dataplane import handlers
from tests.security._support import record

pytestmark = pytest.mark.asyncio(loop_scope="module")

API = "2025-10-02-preview"
SUB = "00000000-0000-0000-0000-000000000000"
ARM_LIST = f"/subscriptions/{SUB}/providers/Microsoft.App/sessionPools?api-version={API}"

MALFORMED: dict[str, bytes] = {
    "non-utf8": b"\xff\xfe",
    "bad-utf8-sequence": b"\xc3\x28\xa0\xe2\x82",
    "control-chars": b"a\x01\x1b[2Jb\x7f",
    "over-long": b"A" * 8000,
}
"""Header values that are not what HTTP allows or what any client sends."""


@dataclass(frozen=True)
class Surface:
    """Where a request goes and what it carries besides the header under test."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Served:
    """The running server and what a test needs of it."""

    port: int
    endpoint_path: str
    api_key: str
    mcp_key: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[Served]:
    # One pool per list page and two sessions, so that listings carry a nextLink built from the
    # request's URL (and so from its Host header).
    async with LocalSessionsServer(
        pool_defaults=PoolConfig(sandbox=SandboxMode.NONE), list_page_size=1
    ) as server:
        pool = await server.create_pool("hostile", mcp_enabled=True, ready_session_instances=0, default=True)
        await server.create_pool("second", ready_session_instances=0)
        port = urlsplit(server.base_url).port
        assert port is not None
        assert pool.mcp_api_key is not None
        served = Served(port, urlsplit(server.endpoint_for(pool.key)).path, server.api_key, pool.mcp_api_key)
        for identifier in ("first-session", "second-session"):  # listing files creates the session
            target = f"{served.endpoint_path}/files?api-version={API}&identifier={identifier}"
            surface = Surface("GET", target, {"Authorization": f"Bearer {served.api_key}"})
            assert await _send(port, _request(surface)) == 200
        yield served


async def _send(port: int, raw: bytes) -> int:
    """Send ``raw`` and return the status of the answer (0: the connection closed unanswered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)
    except asyncio.IncompleteReadError:
        return 0
    finally:
        writer.close()
    return int(head.split(b" ")[1])


def _request(surface: Surface, name: str | None = None, value: bytes | None = None) -> bytes:
    headers = {"Host": "127.0.0.1", **surface.headers}
    lines = [f"{surface.method} {surface.target} HTTP/1.1".encode()]
    for key, text in headers.items():
        if name is None or key.lower() != name.lower():
            lines.append(f"{key}: {text}".encode())
    if name is not None and value is not None:
        lines.append(name.encode() + b": " + value)
    lines += [f"Content-Length: {len(surface.body)}".encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + surface.body


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _status_and_log(served: Served, raw: bytes) -> tuple[int, list[logging.LogRecord]]:
    """The status of ``raw`` and what every logger wrote while the server answered it."""
    handler = _Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        status = await _send(served.port, raw)
        await asyncio.sleep(0)  # the access log line is written as the handler returns
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return status, [
        r for r in handler.records if r.name.startswith(("autogen_aca_sessions", "aiohttp", "opentelemetry"))
    ]


def _assert_quiet(records: list[logging.LogRecord], what: str) -> None:
    loud = [
        f"{r.levelname} {r.name}: {r.getMessage()[:200]}" for r in records if r.levelno >= logging.WARNING
    ]
    assert not loud, (what, loud)
    traced = [r.getMessage()[:200] for r in records if r.exc_info]
    assert not traced, (what, traced)
    others = [r.getMessage()[:200] for r in records if r.name != ACCESS_LOGGER and r.levelno >= logging.INFO]
    assert len(others) <= 1, (what, others)


def _surfaces(served: Served) -> dict[str, Surface]:
    auth = {"Authorization": f"Bearer {served.api_key}"}
    mcp_key = {"x-ms-apikey": served.mcp_key, "Content-Type": "application/json"}
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    execute = json.dumps({"code": "1+1", "executionType": "Synchronous", "codeInputType": "Inline"}).encode()
    ep = served.endpoint_path
    return {
        "data-plane": Surface("GET", f"{ep}/listSessions?api-version={API}", auth),
        "data-plane-root": Surface("GET", f"/listSessions?api-version={API}", auth),
        "data-plane-execute": Surface(
            "POST",
            f"{ep}/executions?api-version={API}&identifier=malformed",
            {**auth, "Content-Type": "application/json"},
            execute,
        ),
        "data-plane-upload": Surface("POST", f"{ep}/files?api-version={API}&identifier=malformed", auth),
        "arm": Surface("GET", ARM_LIST, auth),
        "mcp": Surface("POST", f"{ep}/mcp", mcp_key, ping),
    }


@dataclass(frozen=True)
class HeaderCase:
    """A header the server reads, where it reads it, and the answer to a value it cannot use."""

    header: str
    surface: str
    status: int
    """The answer to a malformed value the HTTP parser lets through (200: the value is ignored)."""


HEADER_CASES: list[HeaderCase] = [
    HeaderCase("Authorization", "data-plane", 401),
    HeaderCase("Authorization", "data-plane-root", 401),
    HeaderCase("Authorization", "arm", 401),
    HeaderCase("Authorization", "mcp", 200),  # the MCP endpoint reads x-ms-apikey, never a bearer
    HeaderCase("x-ms-apikey", "mcp", 401),
    HeaderCase("Origin", "mcp", 403),
    HeaderCase("Accept", "mcp", 406),
    HeaderCase("Mcp-Session-Id", "mcp", 404),
    HeaderCase("MCP-Protocol-Version", "mcp", 400),
    HeaderCase("operation-id", "data-plane-execute", 400),
    HeaderCase("Content-Type", "data-plane-upload", 400),
    HeaderCase("x-ms-client-request-id", "arm", 200),
    HeaderCase("traceparent", "data-plane", 200),
    HeaderCase("tracestate", "data-plane", 200),
    HeaderCase("baggage", "arm", 200),
    HeaderCase("Host", "data-plane", 200),
    HeaderCase("Host", "arm", 200),
]


def _expected(case: HeaderCase, value: bytes) -> int:
    if any(b < 0x20 or b == 0x7F for b in value):
        return 400  # refused by the HTTP parser before any handler (RFC 9110: no controls in a field)
    return case.status


@pytest.mark.parametrize("value_name", list(MALFORMED))
@pytest.mark.parametrize("case", HEADER_CASES, ids=lambda c: f"{c.header}@{c.surface}")
async def test_a_malformed_header_gets_a_4xx_or_is_ignored_and_logs_no_error(
    served: Served, case: HeaderCase, value_name: str
) -> None:
    surface = _surfaces(served)[case.surface]
    value = MALFORMED[value_name]
    if case.header == "Authorization" and value_name != "control-chars":
        value = b"Bearer " + value
    status, records = await _status_and_log(served, _request(surface, case.header, value))
    record("malformed headers sent")
    assert status == _expected(case, value), (case, value_name, status)
    _assert_quiet(records, f"{case.header}={value_name} on {case.surface}")


@pytest.mark.parametrize(
    ("origin", "status"), [(b"http://[::1", 403), (b"http://[zz]", 403), (b"http://[::1]:8080", 200)]
)
async def test_an_origin_that_is_not_a_url_is_refused_403_on_mcp(
    served: Served, origin: bytes, status: int
) -> None:
    surface = _surfaces(served)["mcp"]
    got, records = await _status_and_log(served, _request(surface, "Origin", origin))
    assert got == status
    _assert_quiet(records, origin.decode())


@pytest.mark.parametrize(
    ("name", "surface", "target", "statuses"),
    [
        ("raw byte in query", "data-plane", "{ep}/listSessions?api-version={api}&skip=\xff", (400,)),
        ("raw byte in path", "data-plane", "{ep}/files/\xff?api-version={api}&identifier=a", (400,)),
        (
            "escaped non-utf8 identifier",
            "data-plane-execute",
            "{ep}/executions?api-version={api}&identifier=%ff%fe",
            (400,),
        ),
        ("escaped non-utf8 api-version", "data-plane", "{ep}/listSessions?api-version=%ff", (400,)),
        ("escaped non-utf8 skip", "data-plane", "{ep}/listSessions?api-version={api}&skip=%ff", (400,)),
        (
            "escaped non-utf8 file name",
            "data-plane",
            "{ep}/files/%ff%fe?api-version={api}&identifier=a",
            (400, 404),
        ),
        (
            "escaped non-utf8 path",
            "data-plane",
            "{ep}/files?api-version={api}&identifier=a&path=%ff",
            (400, 404),
        ),
        (
            "escaped non-utf8 pool",
            "data-plane",
            f"/subscriptions/{SUB}/resourceGroups/r/sessionPools/%ff/listSessions?api-version={API}",
            (404,),
        ),
        (
            "escaped non-utf8 arm name",
            "arm",
            f"/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.App/sessionPools/%ff?api-version={API}",
            (400,),
        ),
        (
            "escaped non-utf8 arm subscription",
            "arm",
            f"/subscriptions/%ff/providers/Microsoft.App/sessionPools?api-version={API}",
            (400,),
        ),
        ("escaped non-utf8 arm skip token", "arm", ARM_LIST + "&$skipToken=%ff", (400,)),
        (
            "escaped non-utf8 arm api-version",
            "arm",
            f"/subscriptions/{SUB}/providers/Microsoft.App/sessionPools?api-version=%ff",
            (400,),
        ),
        ("over-long skip", "data-plane", "{ep}/listSessions?api-version={api}&skip=" + "9" * 7000, (200,)),
        ("superscript skip", "data-plane", "{ep}/listSessions?api-version={api}&skip=%C2%B2", (400,)),
        ("superscript arm skip token", "arm", ARM_LIST + "&$skipToken=%C2%B2", (400,)),
    ],
)
async def test_malformed_query_strings_and_path_segments_get_a_4xx_and_log_no_error(
    served: Served, name: str, surface: str, target: str, statuses: tuple[int, ...]
) -> None:
    base = _surfaces(served)[surface]
    wire_target = target.format(ep=served.endpoint_path, api=API).encode("latin-1")
    raw = _request(Surface(base.method, "", base.headers, base.body)).replace(
        b"  HTTP/1.1", b" " + wire_target + b" HTTP/1.1", 1
    )
    status, records = await _status_and_log(served, raw)
    record("malformed query strings and paths sent")
    assert status in statuses, (name, status)
    _assert_quiet(records, name)


@pytest.mark.parametrize("host", [b"\xff\xfe", b"127.0.0.1:99999999"], ids=["non-utf8", "port-out-of-range"])
@pytest.mark.parametrize("surface", ["data-plane-list", "arm-list", "arm-put"])
async def test_a_host_header_no_url_can_carry_still_gets_an_answer_with_its_links(
    served: Served, host: bytes, surface: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links (nextLink, Azure-AsyncOperation) are built from the request's URL, which aiohttp
    builds from the Host header; one that cannot be in a URL was a 500 and a traceback."""
    auth = {"Authorization": f"Bearer {served.api_key}"}
    pool_url = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/sessionPools/hostpool"
    pool_url += f"?api-version={API}"
    put_body = json.dumps(
        {"location": "westus", "properties": {"containerType": "PythonLTS", "poolManagementType": "Dynamic"}}
    ).encode()
    request = {
        "data-plane-list": Surface("GET", f"{served.endpoint_path}/listSessions?api-version={API}", auth),
        "arm-list": Surface("GET", ARM_LIST, auth),
        "arm-put": Surface("PUT", pool_url, {**auth, "Content-Type": "application/json"}, put_body),
    }[surface]
    monkeypatch.setattr(handlers, "LIST_SESSIONS_PAGE_SIZE", 1)
    status, records = await _status_and_log(served, _request(request, "Host", host))
    assert status in (200, 201), status
    _assert_quiet(records, f"Host {host!r} on {surface}")
    if surface == "arm-put":
        await _delete_pool(served, pool_url)


async def _delete_pool(served: Served, pool_url: str) -> None:
    """Delete the pool once its provisioning ended, and wait until it is gone."""
    url = f"http://127.0.0.1:{served.port}{pool_url}"
    headers = {"Authorization": f"Bearer {served.api_key}"}
    async with aiohttp.ClientSession() as http:
        while True:  # an operation runs on a new pool until it serves; DELETE meanwhile is 409
            async with http.get(url, headers=headers) as resp:
                state = (await resp.json())["properties"]["provisioningState"]
            if state not in ("InProgress", "Accepted", "Provisioning"):
                break
            await asyncio.sleep(0.05)
        async with http.delete(url, headers=headers) as resp:
            assert resp.status in (200, 202, 204), resp.status
        while True:
            async with http.get(url, headers=headers) as resp:
                if resp.status == 404:
                    return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("value", "echoed"),
    [(b"req-1", True), ("r\u00e9q".encode(), False), (b"\xff\xfe", False), (b"A" * 201, False)],
    ids=["ascii", "non-ascii", "non-utf8", "over-long"],
)
async def test_the_client_request_id_is_echoed_only_when_it_is_a_short_printable_ascii_value(
    served: Served, value: bytes, echoed: bool
) -> None:
    surface = _surfaces(served)["arm"]
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(_request(surface, "x-ms-client-request-id", value))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert head.isascii()  # response headers are ASCII whatever the caller sent
    assert (b"x-ms-client-request-id: " + value in head) is echoed


@pytest.mark.parametrize("host", [b"a b", b'x"y', b"[zz]:1"], ids=["space", "quote", "bad-ipv6"])
async def test_a_host_header_that_names_no_host_is_not_echoed_in_operation_links(
    served: Served, host: bytes
) -> None:
    """A printable ``Host`` that is no host (``a b``) passed the header-safety check and came back
    in ``Azure-AsyncOperation`` as ``https://a b/...``, a URL no client can follow."""
    auth = {"Authorization": f"Bearer {served.api_key}", "Content-Type": "application/json"}
    pool_url = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/sessionPools/echopool"
    pool_url += f"?api-version={API}"
    body = json.dumps(
        {"location": "westus", "properties": {"containerType": "PythonLTS", "poolManagementType": "Dynamic"}}
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(_request(Surface("PUT", pool_url, auth, body), "Host", host))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    finally:
        writer.close()
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == "201", lines[0]
    links = [
        line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("azure-asyncoperation:")
    ]
    assert len(links) == 1, lines
    assert links[0].startswith(f"http://127.0.0.1:{served.port}/"), links
    await _delete_pool(served, pool_url)


@pytest.mark.parametrize("value", [b"0", b"bogus-expectation", b"\xff"], ids=["zero", "unknown", "non-utf8"])
@pytest.mark.parametrize("surface", ["data-plane", "data-plane-execute", "arm"])
async def test_an_expectation_other_than_100_continue_is_ignored_not_a_plain_text_417(
    served: Served, surface: str, value: bytes
) -> None:
    """aiohttp answered ``Expect: 0`` with a plain-text 417 before any route, so no JSON error body
    (found by the header fuzzer). The expectation is ignored and the route answers as usual."""
    status, records = await _status_and_log(served, _request(_surfaces(served)[surface], "Expect", value))
    assert status == 200, (surface, value, status)
    _assert_quiet(records, f"Expect {value!r} on {surface}")


async def test_expect_100_continue_still_gets_its_interim_answer(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.api_key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"http://127.0.0.1:{served.port}{served.endpoint_path}/listSessions?api-version={API}",
            headers=auth,
            expect100=True,
        ) as resp,
    ):
        assert resp.status == 200
