"""Hostile JSON-RPC at the pool's MCP endpoint: every message gets its JSON-RPC error code
(-32700, -32600, -32601, -32602) or an HTTP refusal, none a 5xx, and the server serves after."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionPool
from tests.security._support import record

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS: dict[str, Any] = {"mcp": True}

PARSE, INVALID_REQUEST, NO_METHOD, INVALID_PARAMS = -32700, -32600, -32601, -32602


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def _req(method: str, params: Any = None, request_id: Any = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


# (name, body, expected HTTP status, expected JSON-RPC error code)
SINGLE_CASES: list[tuple[str, bytes, int, int]] = [
    ("empty body", b"", 400, PARSE),
    ("not json", b"{jsonrpc: 2.0}", 400, PARSE),
    ("truncated json", b'{"jsonrpc": "2.0", "id": 1, "method": "ping"', 400, PARSE),
    ("bad utf-8", b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}', 400, PARSE),
    ("absurd nesting", b"[" * 100_000 + b"]" * 100_000, 400, PARSE),
    ("huge number", b'{"jsonrpc": "2.0", "id": 1' + b"0" * 5000 + b', "method": "ping"}', 400, PARSE),
    ("json string", b'"ping"', 400, INVALID_REQUEST),
    ("json number", b"42", 400, INVALID_REQUEST),
    ("json null", b"null", 400, INVALID_REQUEST),
    ("no jsonrpc", b'{"id": 1, "method": "ping"}', 400, INVALID_REQUEST),
    ("jsonrpc 1.0", b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', 400, INVALID_REQUEST),
    ("jsonrpc number", b'{"jsonrpc": 2.0, "id": 1, "method": "ping"}', 400, INVALID_REQUEST),
    ("no method", b'{"jsonrpc": "2.0", "id": 1}', 400, INVALID_REQUEST),
    ("method number", b'{"jsonrpc": "2.0", "id": 1, "method": 5}', 400, INVALID_REQUEST),
    ("method empty", b'{"jsonrpc": "2.0", "id": 1, "method": ""}', 400, INVALID_REQUEST),
    ("id object", b'{"jsonrpc": "2.0", "id": {}, "method": "ping"}', 400, INVALID_REQUEST),
    ("id float", b'{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}', 400, INVALID_REQUEST),
    ("id bool", b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', 400, INVALID_REQUEST),
    ("id null", b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', 400, INVALID_REQUEST),
    ("params string", _req("ping", "x"), 400, INVALID_REQUEST),
    ("params array", _req("tools/list", [1, 2]), 400, INVALID_PARAMS),
    ("unknown method", _req("tools/delete"), 200, NO_METHOD),
    ("dot notation", _req("tools.call"), 200, NO_METHOD),
    ("method case", _req("Tools/List"), 200, NO_METHOD),
    ("resources", _req("resources/list"), 200, NO_METHOD),
    ("notification method as request", _req("notifications/initialized"), 200, NO_METHOD),
    ("call without params", _req("tools/call"), 200, INVALID_PARAMS),
    ("call name number", _req("tools/call", {"name": 5}), 200, INVALID_PARAMS),
    ("call name empty", _req("tools/call", {"name": ""}), 200, INVALID_PARAMS),
    ("call unknown tool", _req("tools/call", {"name": "deleteEverything"}), 200, INVALID_PARAMS),
    (
        "call arguments array",
        _req("tools/call", {"name": "launchShell", "arguments": []}),
        200,
        INVALID_PARAMS,
    ),
    (
        "call arguments string",
        _req("tools/call", {"name": "launchShell", "arguments": "{}"}),
        200,
        INVALID_PARAMS,
    ),
    ("initialize version number", _req("initialize", {"protocolVersion": 2025}), 200, INVALID_PARAMS),
    ("initialize capabilities list", _req("initialize", {"capabilities": []}), 200, INVALID_PARAMS),
    ("list cursor object", _req("tools/list", {"cursor": {}}), 200, INVALID_PARAMS),
    ("empty batch", b"[]", 400, INVALID_REQUEST),
    (
        "oversized batch",
        json.dumps([json.loads(_req("ping", request_id=i)) for i in range(33)]).encode(),
        400,
        INVALID_REQUEST,
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), SINGLE_CASES, ids=[c[0] for c in SINGLE_CASES])
async def test_hostile_messages_get_their_json_rpc_error(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession, name: str, body: bytes, status: int, code: int
) -> None:
    headers = {"Content-Type": "application/json", "x-ms-apikey": module_pool.mcp_api_key}
    async with http.post(module_pool.mcp_endpoint, data=body, headers=headers) as resp:
        payload = await resp.read()
        assert resp.status == status, (name, resp.status, payload[:300])
        assert resp.headers["Content-Type"].startswith("application/json")
    answer = json.loads(payload)
    assert answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == code, answer
    assert answer["error"]["message"]
    await _still_serves(module_pool, http)


async def test_a_batch_answers_each_message_in_order(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession
) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b", "method": "nope"},
        "not a message",
        {"jsonrpc": "2.0", "id": "c", "method": "initialize"},
        {"jsonrpc": "2.0", "id": "d", "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 99, "result": {}},
    ]
    async with http.post(
        module_pool.mcp_endpoint, json=batch, headers={"x-ms-apikey": module_pool.mcp_api_key}
    ) as resp:
        assert resp.status == 200
        answers = await resp.json()
    assert [a.get("id") for a in answers] == ["a", "b", None, "c", "d"]
    assert answers[0]["result"] == {}
    assert answers[1]["error"]["code"] == NO_METHOD
    assert answers[2]["error"]["code"] == INVALID_REQUEST
    assert answers[3]["error"]["code"] == INVALID_REQUEST  # initialize may not be batched
    assert len(answers[4]["result"]["tools"]) == 4


async def test_a_batch_of_notifications_gets_202(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession
) -> None:
    batch = [{"jsonrpc": "2.0", "method": "notifications/initialized"}, {"jsonrpc": "2.0", "method": "x/y"}]
    async with http.post(
        module_pool.mcp_endpoint, json=batch, headers={"x-ms-apikey": module_pool.mcp_api_key}
    ) as resp:
        assert resp.status == 202
        assert await resp.read() == b""


async def test_a_body_over_the_limit_is_413_with_a_json_rpc_error(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession
) -> None:
    code = "x" * (17 * 1024 * 1024)
    body = _req(
        "tools/call",
        {"name": "runPythonCodeInRemoteEnvironment", "arguments": {"environmentId": "e", "pythonCode": code}},
    )
    async with http.post(
        module_pool.mcp_endpoint, data=body, headers={"x-ms-apikey": module_pool.mcp_api_key}
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == INVALID_REQUEST
    await _still_serves(module_pool, http)


async def test_huge_and_wrongly_typed_tool_arguments_are_tool_errors(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession
) -> None:
    arguments_cases: list[dict[str, Any]] = [
        {"environmentId": "e" * 1_000_000, "pythonCode": "1"},
        {"environmentId": 5, "pythonCode": "1"},
        {"environmentId": ["a"], "pythonCode": "1"},
        {"environmentId": None, "pythonCode": "1"},
        {"pythonCode": "1"},
        {"environmentId": "e", "pythonCode": {"code": "1"}},
        {"environmentId": "e\x00", "pythonCode": "1"},
        {"environmentId": "../../etc", "pythonCode": "1"},
    ]
    for arguments in arguments_cases:
        body = _req("tools/call", {"name": "runPythonCodeInRemoteEnvironment", "arguments": arguments})
        async with http.post(
            module_pool.mcp_endpoint, data=body, headers={"x-ms-apikey": module_pool.mcp_api_key}
        ) as resp:
            assert resp.status == 200
            answer = await resp.json()
        assert answer["result"]["isError"] is True, answer
        assert answer["result"]["content"][0]["text"]
    # None of it created a session.
    assert module_pool.manager.get("../../etc") is None
    await _still_serves(module_pool, http)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "GET", "HEAD", "OPTIONS"])
async def test_other_http_methods_are_405(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession, method: str
) -> None:
    async with http.request(
        method, module_pool.mcp_endpoint, headers={"x-ms-apikey": module_pool.mcp_api_key}
    ) as resp:
        assert resp.status == 405
        assert "POST" in resp.headers["Allow"]
    record("hostile MCP requests answered without a 5xx")


async def test_unauthenticated_hostile_bodies_get_401_before_parsing(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession
) -> None:
    for body in (b"{not json", b"[]", _req("tools/call", {"name": "launchShell"})):
        async with http.post(module_pool.mcp_endpoint, data=body, headers={"x-ms-apikey": ""}) as resp:
            assert resp.status == 401
    await _still_serves(module_pool, http)


async def _still_serves(pool: LocalSessionPool, http: aiohttp.ClientSession) -> None:
    record("hostile MCP requests answered without a 5xx")
    async with http.post(
        pool.mcp_endpoint, data=_req("ping", request_id="alive"), headers={"x-ms-apikey": pool.mcp_api_key}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["result"] == {}


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://evil.example", 403),
        ("http://127.0.0.1.evil.example:8321", 403),
        ("null", 403),
        ("http://localhost:6274", 200),
        ("http://127.0.0.1:8321", 200),
        ("http://[::1]:9000", 200),
    ],
)
async def test_browser_origins_other_than_this_machine_are_refused(
    module_pool: LocalSessionPool, http: aiohttp.ClientSession, origin: str, status: int
) -> None:
    headers = {"x-ms-apikey": module_pool.mcp_api_key, "Origin": origin}
    async with http.post(module_pool.mcp_endpoint, data=_req("ping"), headers=headers) as resp:
        assert resp.status == status
        if status == 403:
            assert "origin" in (await resp.json())["error"]["message"]
    record("hostile MCP requests answered without a 5xx")
