"""The official MCP SDK (2.x) client over streamable HTTP against a local pool's MCP server.

Runs in ``nox -s mcp_sdk`` (mcp 2.x); in other environments the module is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

# mcp 2.x depends on httpx2 (1.x on httpx): its presence tells the major apart.
httpx2 = pytest.importorskip("httpx2", reason="needs the mcp 2.x SDK: run `nox -s mcp_sdk`")
pytest.importorskip("mcp.client.client", reason="needs the mcp 2.x SDK: run `nox -s mcp_sdk`")

import jsonschema  # noqa: E402
import mcp_types  # noqa: E402
from mcp.client.client import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from autogen_aca_sessions import LocalSessionPool, McpConnection  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS: dict[str, Any] = {"mcp": True}


@asynccontextmanager
async def connect(module_pool: LocalSessionPool) -> AsyncIterator[Client]:
    """A connected SDK client (not a fixture: anyio scopes must close in the task that opened them)."""
    conn = McpConnection.from_pool(module_pool)
    async with (
        httpx2.AsyncClient(headers=conn.headers, timeout=120) as http,
        Client(streamable_http_client(conn.url, http_client=http)) as connected,
    ):
        yield connected


async def test_the_sdk_client_initializes_and_lists_tools_with_valid_schemas(
    module_pool: LocalSessionPool,
) -> None:
    async with connect(module_pool) as client:
        await _initialized_and_listed(client)


async def _initialized_and_listed(client: Client) -> None:
    assert client.protocol_version == "2025-11-25"
    assert client.server_info is not None
    assert client.server_info.name == "Microsoft Container Apps MCP Server"
    assert client.server_capabilities.tools is not None
    listed = await client.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == {
        "launchShell",
        "launchPythonEnvironment",
        "runPythonCodeInRemoteEnvironment",
        "runShellCommandInRemoteEnvironment",
    }
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.description


async def _call(client: Client, name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
    listed = await client.list_tools()
    tool = next(t for t in listed.tools if t.name == name)
    jsonschema.validate(arguments, tool.input_schema)
    result = await client.call_tool(name, arguments)
    assert isinstance(result, mcp_types.CallToolResult)
    assert result.content
    assert result.structured_content is not None
    if not result.is_error:
        assert tool.output_schema is not None
        jsonschema.validate(result.structured_content, tool.output_schema)
    return result


async def test_the_sdk_client_calls_every_tool(module_pool: LocalSessionPool) -> None:
    async with connect(module_pool) as client:
        await _calls_every_tool(client, module_pool)


async def _calls_every_tool(client: Client, module_pool: LocalSessionPool) -> None:
    launched = await _call(client, "launchShell", {})
    assert launched.structured_content is not None
    environment_id = launched.structured_content["environmentId"]
    older = await _call(client, "launchPythonEnvironment", {})
    assert older.structured_content is not None
    assert older.structured_content["environmentId"] != environment_id

    python = await _call(
        client,
        "runPythonCodeInRemoteEnvironment",
        {"environmentId": environment_id, "pythonCode": "v = 6 * 7\nv"},
    )
    assert python.structured_content is not None
    assert python.structured_content["executionResult"] == 42
    assert python.is_error is False
    again = await _call(
        client,
        "runPythonCodeInRemoteEnvironment",
        {"environmentId": environment_id, "pythonCode": "print(v + 1)"},
    )
    assert again.structured_content is not None
    assert again.structured_content["stdout"] == "43\n"

    shell = await _call(
        client,
        "runShellCommandInRemoteEnvironment",
        {
            "environmentId": environment_id,
            "execCommandAndArgs": ["sh", "-c", "echo $0 $1", "one", "two words"],
        },
    )
    assert shell.structured_content is not None
    assert shell.structured_content["stdout"] == "one two words\n"
    assert shell.structured_content["exitCode"] == 0

    failed = await _call(
        client,
        "runPythonCodeInRemoteEnvironment",
        {"environmentId": environment_id, "pythonCode": "raise KeyError('k')"},
    )
    assert failed.is_error is True
    text = "".join(block.text for block in failed.content if isinstance(block, mcp_types.TextContent))
    assert "KeyError" in text
    assert "Traceback" in text

    gone = await _call(
        client,
        "runShellCommandInRemoteEnvironment",
        {"environmentId": "not-launched", "shellCommand": "true"},
    )
    assert gone.is_error is True
    await module_pool.manager.delete(environment_id)


async def test_images_reach_the_sdk_client_as_image_content(module_pool: LocalSessionPool) -> None:
    async with connect(module_pool) as client:
        await _images(client)


async def _images(client: Client) -> None:
    launched = await _call(client, "launchShell", {})
    assert launched.structured_content is not None
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    result = await _call(
        client,
        "runPythonCodeInRemoteEnvironment",
        {"environmentId": launched.structured_content["environmentId"], "pythonCode": code},
    )
    images = [block for block in result.content if isinstance(block, mcp_types.ImageContent)]
    assert len(images) == 1
    assert images[0].mime_type == "image/png"


async def test_the_legacy_handshake_client_works_too(module_pool: LocalSessionPool) -> None:
    conn = McpConnection.from_pool(module_pool)
    async with (
        httpx2.AsyncClient(headers=conn.headers, timeout=120) as http,
        Client(streamable_http_client(conn.url, http_client=http), mode="legacy") as client,
    ):
        result = await client.call_tool("launchShell", {})
        assert result.structured_content is not None
        assert result.structured_content["environmentId"]


async def test_a_wrong_key_fails_the_sdk_connection(module_pool: LocalSessionPool) -> None:
    conn = McpConnection(module_pool.mcp_endpoint, "not-the-key")
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the SDK wraps the 401 its own way
        async with (
            httpx2.AsyncClient(headers=conn.headers, timeout=30) as http,
            Client(streamable_http_client(conn.url, http_client=http), mode="legacy"),
        ):
            pass
    assert "401" in repr(caught.value) or "Unauthorized" in repr(caught.value) or "key" in repr(caught.value)
