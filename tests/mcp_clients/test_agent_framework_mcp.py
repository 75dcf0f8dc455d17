"""Agent Framework's ``MCPStreamableHTTPTool`` (mcp 2.x) against a local pool's MCP server.

Runs in ``nox -s mcp_sdk``; the agent loop itself is exercised by ``examples/mcp_agent.py``
(tests/e2e/test_examples.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("agent_framework", reason="needs Agent Framework and mcp 2.x: run `nox -s mcp_sdk`")
pytest.importorskip("mcp.client.client", reason="needs mcp 2.x: run `nox -s mcp_sdk`")

from agent_framework import MCPStreamableHTTPTool

from autogen_aca_sessions import LocalSessionPool, McpConnection

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS: dict[str, Any] = {"mcp": True}


def _text(result: Any) -> str:
    if isinstance(result, str):
        return result
    return "\n".join(str(getattr(item, "text", None) or item) for item in result)


async def test_the_tool_loads_every_function_with_its_schema(module_pool: LocalSessionPool) -> None:
    conn = McpConnection.from_pool(module_pool)
    async with MCPStreamableHTTPTool(**conn.agent_framework_tool_kwargs()) as tool:
        functions = {f.name: f for f in tool.functions}
        assert set(functions) == {
            "launchShell",
            "launchPythonEnvironment",
            "runPythonCodeInRemoteEnvironment",
            "runShellCommandInRemoteEnvironment",
        }
        python = functions["runPythonCodeInRemoteEnvironment"]
        assert "Jupyter" in python.description
        schema = python.parameters()
        assert set(schema["required"]) == {"environmentId", "pythonCode"}


async def test_the_tool_runs_python_and_shell_with_state_kept(module_pool: LocalSessionPool) -> None:
    conn = McpConnection.from_pool(module_pool)
    async with MCPStreamableHTTPTool(**conn.agent_framework_tool_kwargs()) as tool:
        launched = _text(await tool.call_tool("launchShell"))
        found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", launched)
        assert found is not None, launched
        environment_id = found.group(0)
        await tool.call_tool(
            "runPythonCodeInRemoteEnvironment", environmentId=environment_id, pythonCode="z = 20"
        )
        got = _text(
            await tool.call_tool(
                "runPythonCodeInRemoteEnvironment", environmentId=environment_id, pythonCode="print(z + 1)"
            )
        )
        assert "21" in got
        shell = _text(
            await tool.call_tool(
                "runShellCommandInRemoteEnvironment",
                environmentId=environment_id,
                execCommandAndArgs=["printf", "%s|", "a b", "c"],
            )
        )
        assert "a b|c|" in shell
    await module_pool.manager.delete(environment_id)


async def test_a_wrong_key_is_refused(module_pool: LocalSessionPool) -> None:
    conn = McpConnection(module_pool.mcp_endpoint, "wrong-key")
    with pytest.raises(Exception):  # noqa: B017, PT011 - Agent Framework wraps the 401 its own way
        async with MCPStreamableHTTPTool(**conn.agent_framework_tool_kwargs()):
            pass
