"""AutoGen's ``McpWorkbench`` (autogen-ext 0.7.5, mcp 1.x) against a local pool's MCP server.

Runs in ``nox -s mcp_autogen``: autogen-ext 0.7.5 imports mcp 1.x APIs and fails with mcp 2.x.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("mcp.client.streamable_http", reason="needs mcp 1.x: run `nox -s mcp_autogen`")
workbench_module = pytest.importorskip(
    "autogen_ext.tools.mcp", reason="needs autogen-ext[mcp] 0.7.5 with mcp 1.x: run `nox -s mcp_autogen`"
)

from autogen_aca_sessions import LocalSessionPool, McpConnection  # noqa: E402

McpWorkbench = workbench_module.McpWorkbench
StreamableHttpServerParams = workbench_module.StreamableHttpServerParams

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS: dict[str, Any] = {"mcp": True}


def _text(result: Any) -> str:
    return "\n".join(
        getattr(item, "content", "")
        for item in result.result
        if getattr(item, "type", "") == "TextResultContent"
    )


async def test_the_workbench_lists_and_calls_every_tool(module_pool: LocalSessionPool) -> None:
    params = StreamableHttpServerParams(**McpConnection.from_pool(module_pool).autogen_server_params())
    async with McpWorkbench(params) as workbench:
        tools = {tool["name"]: tool for tool in await workbench.list_tools()}
        assert set(tools) == {
            "launchShell",
            "launchPythonEnvironment",
            "runPythonCodeInRemoteEnvironment",
            "runShellCommandInRemoteEnvironment",
        }
        assert tools["runPythonCodeInRemoteEnvironment"]["parameters"]["required"] == [
            "environmentId",
            "pythonCode",
        ]

        launched = await workbench.call_tool("launchShell", {})
        assert not launched.is_error
        found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", _text(launched))
        assert found is not None, _text(launched)
        environment_id = found.group(0)

        await workbench.call_tool(
            "runPythonCodeInRemoteEnvironment", {"environmentId": environment_id, "pythonCode": "w = 5"}
        )
        python = await workbench.call_tool(
            "runPythonCodeInRemoteEnvironment", {"environmentId": environment_id, "pythonCode": "w * 9"}
        )
        assert not python.is_error
        assert "result: 45" in _text(python)

        shell = await workbench.call_tool(
            "runShellCommandInRemoteEnvironment",
            {"environmentId": environment_id, "shellCommand": "echo hi from sh"},
        )
        assert "hi from sh" in _text(shell)

        plot = await workbench.call_tool(
            "runPythonCodeInRemoteEnvironment",
            {
                "environmentId": environment_id,
                "pythonCode": "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()",
            },
        )
        assert [item.type for item in plot.result].count("ImageResultContent") == 1

        failed = await workbench.call_tool(
            "runPythonCodeInRemoteEnvironment", {"environmentId": environment_id, "pythonCode": "1/0"}
        )
        assert failed.is_error
        assert "ZeroDivisionError" in _text(failed)

        gone = await workbench.call_tool(
            "runShellCommandInRemoteEnvironment", {"environmentId": "nope", "shellCommand": "true"}
        )
        assert gone.is_error
        assert "launchShell" in _text(gone)
    await module_pool.manager.delete(environment_id)
