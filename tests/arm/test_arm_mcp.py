"""MCP through the management plane: the tutorials' flow (create with ``mcpServerSettings``,
read ``mcpServerEndpoint``, fetch the key, call the tools), rotation and switching MCP off."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from autogen_aca_sessions.local import LocalSessionsServer
from tests.arm._helpers import SUB, Arm

pytestmark = pytest.mark.asyncio(loop_scope="module")

TUTORIAL_API = "2025-02-02-preview"


async def _rpc(http: aiohttp.ClientSession, url: str, key: str, message: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "x-ms-apikey": key}
    async with http.post(url, data=json.dumps(message), headers=headers) as resp:
        raw = await resp.read()
        return resp.status, (json.loads(raw) if raw else None)


async def test_the_shell_tutorial_flow_runs_against_a_pool_created_through_arm(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    # The tutorial's resource, as its ARM template sends it (note coolDownPeriodInSeconds).
    props = {
        "poolManagementType": "Dynamic",
        "containerType": "Shell",
        "scaleConfiguration": {"maxConcurrentSessions": 5, "readySessionInstances": 0},
        "sessionNetworkConfiguration": {"status": "EgressEnabled"},
        "dynamicPoolConfiguration": {
            "lifecycleConfiguration": {"lifecycleType": "Timed", "coolDownPeriodInSeconds": 300}
        },
        "mcpServerSettings": {"isMCPServerEnabled": True},
    }
    body = await arm.create("mcptutorial", props, version=TUTORIAL_API)
    mcp_url = body["properties"]["mcpServerSettings"]["mcpServerEndpoint"]
    fetched = await arm.call(
        "POST",
        arm.pool_url("mcptutorial", version=None) + f"/fetchMCPServerCredentials?api-version={TUTORIAL_API}",
    )
    key = fetched.json()["apiKey"]

    async with aiohttp.ClientSession() as http:  # no bearer key: MCP has its own
        status, init = await _rpc(http, mcp_url, key, {"jsonrpc": "2.0", "id": "1", "method": "initialize"})
        assert status == 200, init
        assert init["result"]["serverInfo"]["name"] == "Microsoft Container Apps MCP Server"
        status, launched = await _rpc(
            http,
            mcp_url,
            key,
            {
                "jsonrpc": "2.0",
                "id": "2",
                "method": "tools/call",
                "params": {"name": "launchShell", "arguments": {}},
            },
        )
        environment = launched["result"]["structuredContent"]["environmentId"]
        status, ran = await _rpc(
            http,
            mcp_url,
            key,
            {
                "jsonrpc": "2.0",
                "id": "3",
                "method": "tools/call",
                "params": {
                    "name": "runShellCommandInRemoteEnvironment",
                    "arguments": {
                        "environmentId": environment,
                        "shellCommand": "echo Hello from Azure Container Apps Shell Session!",
                    },
                },
            },
        )
        assert status == 200, ran
        assert (
            "Hello from Azure Container Apps Shell Session!" in ran["result"]["structuredContent"]["stdout"]
        )

        # Rotation: the old key stops working at once, the new one works.
        rotated = await arm.call(
            "POST",
            arm.pool_url("mcptutorial", version=None)
            + "/rotateMcpServerCredentials?api-version=2025-10-02-preview",
        )
        new_key = rotated.json()["apiKey"]
        status, _ = await _rpc(http, mcp_url, key, {"jsonrpc": "2.0", "id": "4", "method": "initialize"})
        assert status == 401
        status, _ = await _rpc(http, mcp_url, new_key, {"jsonrpc": "2.0", "id": "5", "method": "initialize"})
        assert status == 200

        # The server's bearer key is not the MCP key.
        status, _ = await _rpc(
            http, mcp_url, arm_server.api_key, {"jsonrpc": "2.0", "id": "6", "method": "initialize"}
        )
        assert status == 401

        # MCP switched off by PATCH: /mcp is an unknown data-plane path again; the key survives.
        patch = await arm.call(
            "PATCH",
            arm.pool_url("mcptutorial"),
            body={"properties": {"mcpServerSettings": {"isMcpServerEnabled": False}}},
        )
        await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
        status, _ = await _rpc(http, mcp_url, new_key, {"jsonrpc": "2.0", "id": "7", "method": "initialize"})
        assert status in (401, 404)
        shown = (await arm.call("GET", arm.pool_url("mcptutorial"))).json()
        assert shown["properties"]["mcpServerSettings"] == {
            "isMcpServerEnabled": False,
            "isMcpServerApiKeyDisabled": False,
        }
        patch = await arm.call(
            "PATCH",
            arm.pool_url("mcptutorial"),
            body={"properties": {"mcpServerSettings": {"isMcpServerEnabled": True}}},
        )
        await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
        status, _ = await _rpc(http, mcp_url, new_key, {"jsonrpc": "2.0", "id": "8", "method": "initialize"})
        assert status == 200
    await arm.delete("mcptutorial")


async def test_a_pool_without_mcp_does_not_serve_mcp(arm: Arm, arm_server: LocalSessionsServer) -> None:
    body = await arm.create("nomcpserver")
    pool = arm_server.get_pool("nomcpserver", resource_group="rg1", subscription=SUB)
    assert pool is not None
    async with aiohttp.ClientSession() as http:
        status, _ = await _rpc(
            http,
            body["properties"]["poolManagementEndpoint"] + "/mcp",
            pool.mcp_api_key,
            {"jsonrpc": "2.0", "id": 1, "method": "initialize"},
        )
    assert status in (401, 404)
    await arm.delete("nomcpserver")


async def test_an_arm_patch_of_cooldown_and_max_sessions_reaches_the_running_mcp_server(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    body = await arm.create(
        "mcpfollows",
        {
            "scaleConfiguration": {"maxConcurrentSessions": 5, "readySessionInstances": 0},
            "dynamicPoolConfiguration": {
                "lifecycleConfiguration": {"lifecycleType": "Timed", "cooldownPeriodInSeconds": 300}
            },
            "mcpServerSettings": {"isMcpServerEnabled": True},
        },
        version=TUTORIAL_API,
    )
    mcp_url = body["properties"]["mcpServerSettings"]["mcpServerEndpoint"]
    pool = arm_server.get_pool("mcpfollows", resource_group="rg1", subscription=SUB)
    assert pool is not None
    async with aiohttp.ClientSession() as http:
        status, launched = await _rpc(
            http,
            mcp_url,
            pool.mcp_api_key,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "launchShell", "arguments": {}},
            },
        )
    assert status == 200, launched
    server = pool.mcp_server
    assert server is not None
    assert server.environments.cooldown_seconds == 300
    assert server.environments.max_environments == 1000  # at least 1000, else 10 per session
    patch = await arm.call(
        "PATCH",
        arm.pool_url("mcpfollows", version=TUTORIAL_API),
        body={
            "properties": {
                "scaleConfiguration": {"maxConcurrentSessions": 400},
                "dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 900}},
            }
        },
    )
    assert patch.status == 202, patch.body
    finished = await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
    assert finished["status"] == "Succeeded", finished
    # The same MCP server (its launched environment kept) now enforces the new values.
    assert pool.mcp_server is server
    assert len(server.environments) == 1
    assert server.environments.cooldown_seconds == 900
    assert server.environments.max_environments == 4000
    assert pool.manager is not None
    assert pool.manager.config.cooldown_period_seconds == 900
    await arm.delete("mcpfollows")
