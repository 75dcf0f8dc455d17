"""The pool's MCP server over raw HTTP, as Azure's tutorials call it with curl, on a real local pool."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).parent))
from _mcp_http import call_tool, launch, post, text_of

from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS: dict[str, Any] = {"mcp": True}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def url(module_pool: LocalSessionPool) -> str:
    return module_pool.mcp_endpoint


@pytest.fixture
def key(module_pool: LocalSessionPool) -> str:
    return module_pool.mcp_api_key


async def test_the_tutorial_curl_sequence_works(http: aiohttp.ClientSession, url: str, key: str) -> None:
    init = await post(http, url, {"jsonrpc": "2.0", "id": "1", "method": "initialize"}, key=key)
    result = init.result
    assert init.json()["id"] == "1"
    assert result["protocolVersion"] == "2025-03-26"
    assert result["serverInfo"]["name"] == "Microsoft Container Apps MCP Server"
    assert result["capabilities"]["tools"]["call"] is True
    assert result["capabilities"]["tools"]["list"] is True
    launched = await post(
        http,
        url,
        {
            "jsonrpc": "2.0",
            "id": "2",
            "method": "tools/call",
            "params": {"name": "launchShell", "arguments": {}},
        },
        key=key,
    )
    environment_id = launched.result["structuredContent"]["environmentId"]
    shell = await post(
        http,
        url,
        {
            "jsonrpc": "2.0",
            "id": "3",
            "method": "tools/call",
            "params": {
                "name": "runShellCommandInRemoteEnvironment",
                "arguments": {
                    "environmentId": environment_id,
                    "shellCommand": "echo Hello from Azure Container Apps Shell Session!",
                },
            },
        },
        key=key,
    )
    assert shell.result["structuredContent"]["stdout"] == "Hello from Azure Container Apps Shell Session!\n"
    assert shell.result["structuredContent"]["exitCode"] == 0
    assert shell.result["isError"] is False
    python = await post(
        http,
        url,
        {
            "jsonrpc": "2.0",
            "id": "3",
            "method": "tools/call",
            "params": {
                "name": "runPythonCodeInRemoteEnvironment",
                "arguments": {
                    "environmentId": environment_id,
                    "pythonCode": 'import sys; print(f"Python {sys.version}")',
                },
            },
        },
        key=key,
    )
    assert python.result["structuredContent"]["stdout"].startswith("Python 3.")
    assert "Python 3." in text_of(python.result)


async def test_initialize_answers_a_supported_version_and_opens_an_mcp_session(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    for asked, answered in (
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2024-11-05"),
        ("1999-01-01", "2025-03-26"),
    ):
        reply = await post(
            http,
            url,
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "initialize",
                "params": {
                    "protocolVersion": asked,
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            },
            key=key,
        )
        assert reply.result["protocolVersion"] == answered
        assert reply.json()["id"] == 7
        assert reply.headers["Mcp-Session-Id"]


async def test_notifications_get_202_and_ping_an_empty_result(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    note = await post(http, url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, key=key)
    assert note.status == 202
    assert note.body == b""
    ping = await post(http, url, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=key)
    assert ping.result == {}


async def test_tools_list_offers_every_tool_with_valid_schemas(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    import jsonschema

    reply = await post(http, url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, key=key)
    tools = {tool["name"]: tool for tool in reply.result["tools"]}
    assert set(tools) == {
        "launchShell",
        "launchPythonEnvironment",
        "runPythonCodeInRemoteEnvironment",
        "runShellCommandInRemoteEnvironment",
    }
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool["inputSchema"])
        jsonschema.Draft202012Validator.check_schema(tool["outputSchema"])
        assert tool["inputSchema"]["type"] == "object"
        assert len(tool["description"]) > 80
    assert tools["runPythonCodeInRemoteEnvironment"]["inputSchema"]["required"] == [
        "environmentId",
        "pythonCode",
    ]
    shell_props = tools["runShellCommandInRemoteEnvironment"]["inputSchema"]["properties"]
    assert {"environmentId", "shellCommand", "execCommandAndArgs"} == set(shell_props)


async def test_missing_wrong_or_bearer_keys_get_401(
    http: aiohttp.ClientSession, url: str, key: str, module_pool: LocalSessionPool
) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert key != module_pool.api_key
    missing = await post(http, url, message, key=None)
    wrong = await post(http, url, message, key=key + "x")
    bearer_only = await post(
        http, url, message, key=None, headers={"Authorization": f"Bearer {module_pool.api_key}"}
    )
    data_plane_key = await post(http, url, message, key=module_pool.api_key)
    for reply in (missing, wrong, bearer_only, data_plane_key):
        assert reply.status == 401
        assert reply.error["code"] == -32010
    assert "bearer" in bearer_only.error["message"].lower()
    # ...and the MCP key opens nothing on the data plane.
    async with http.get(
        module_pool.endpoint + "/metadata",
        params={"api-version": "2025-10-02-preview"},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        assert resp.status == 401


async def test_rotating_the_key_retires_the_old_one_at_once(
    http: aiohttp.ClientSession, url: str, module_pool: LocalSessionPool
) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    old = module_pool.mcp_api_key
    new = module_pool.rotate_mcp_api_key()
    try:
        assert new != old
        assert (await post(http, url, message, key=old)).status == 401
        assert (await post(http, url, message, key=new)).result == {}
    finally:
        module_pool.rotate_mcp_api_key(old)


async def test_get_is_405_and_accept_must_admit_json(http: aiohttp.ClientSession, url: str, key: str) -> None:
    async with http.get(url, headers={"x-ms-apikey": key, "Accept": "text/event-stream"}) as resp:
        assert resp.status == 405
        assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"POST", "DELETE"}
    message = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    sse_only = await post(http, url, message, key=key, headers={"Accept": "text/event-stream"})
    assert sse_only.status == 406
    both = await post(http, url, message, key=key, headers={"Accept": "application/json, text/event-stream"})
    assert both.result == {}


async def test_mcp_session_ids_are_checked_and_can_be_ended(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    init = await post(http, url, {"jsonrpc": "2.0", "id": 1, "method": "initialize"}, key=key)
    session = init.headers["Mcp-Session-Id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    assert (await post(http, url, ping, key=key, headers={"Mcp-Session-Id": session})).result == {}
    unknown = await post(http, url, ping, key=key, headers={"Mcp-Session-Id": "nope"})
    assert unknown.status == 404
    async with http.delete(url, headers={"x-ms-apikey": key, "Mcp-Session-Id": session}) as resp:
        assert resp.status == 204
    ended = await post(http, url, ping, key=key, headers={"Mcp-Session-Id": session})
    assert ended.status == 404
    assert "initialize" in ended.error["message"]


async def test_launch_allocates_the_session_lazily(
    http: aiohttp.ClientSession, url: str, key: str, module_pool: LocalSessionPool
) -> None:
    environment_id = await launch(http, url, key)
    assert module_pool.manager.get(environment_id) is None
    await call_tool(
        http,
        url,
        key,
        "runShellCommandInRemoteEnvironment",
        {"environmentId": environment_id, "shellCommand": "true"},
    )
    assert module_pool.manager.get(environment_id) is not None
    await module_pool.manager.delete(environment_id)


async def test_state_persists_within_an_environment_and_environments_are_isolated(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    first = await launch(http, url, key)
    second = await call_tool(http, url, key, "launchPythonEnvironment", {})
    other = second["structuredContent"]["environmentId"]
    assert other != first
    py = "runPythonCodeInRemoteEnvironment"
    sh = "runShellCommandInRemoteEnvironment"
    await call_tool(http, url, key, py, {"environmentId": first, "pythonCode": "x = 41"})
    got = await call_tool(http, url, key, py, {"environmentId": first, "pythonCode": "x + 1"})
    assert got["structuredContent"]["executionResult"] == 42
    assert "result: 42" in text_of(got)
    await call_tool(http, url, key, sh, {"environmentId": first, "shellCommand": "echo kept > note.txt"})
    read = await call_tool(
        http, url, key, py, {"environmentId": first, "pythonCode": "print(open('note.txt').read())"}
    )
    assert read["structuredContent"]["stdout"] == "kept\n\n"
    missing = await call_tool(http, url, key, py, {"environmentId": other, "pythonCode": "x"})
    assert missing["isError"] is True
    assert missing["structuredContent"]["error"]["name"] == "NameError"
    no_file = await call_tool(http, url, key, sh, {"environmentId": other, "shellCommand": "cat note.txt"})
    assert no_file["structuredContent"]["exitCode"] != 0
    assert no_file["structuredContent"]["stdout"] == ""


async def test_a_python_exception_is_a_tool_error_with_its_traceback(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    environment_id = await launch(http, url, key)
    result = await call_tool(
        http,
        url,
        key,
        "runPythonCodeInRemoteEnvironment",
        {"environmentId": environment_id, "pythonCode": "print('a')\n1/0"},
    )
    assert result["isError"] is True
    structured = result["structuredContent"]
    assert structured["status"] == "Failed"
    assert structured["error"]["name"] == "ZeroDivisionError"
    assert structured["stdout"] == "a\n"
    assert "Traceback" in structured["stderr"]
    assert "ZeroDivisionError" in text_of(result)
    assert "Traceback" in text_of(result)


async def test_figures_come_back_as_image_content(http: aiohttp.ClientSession, url: str, key: str) -> None:
    environment_id = await launch(http, url, key)
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2]); plt.show()\n"
        "plt.plot([2, 1]); plt.show()\n"
        "print('drawn')"
    )
    result = await call_tool(
        http,
        url,
        key,
        "runPythonCodeInRemoteEnvironment",
        {"environmentId": environment_id, "pythonCode": code},
    )
    images = [block for block in result["content"] if block["type"] == "image"]
    assert result["isError"] is False
    assert len(images) == 2
    for image in images:
        assert image["mimeType"] == "image/png"
        assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    assert result["structuredContent"]["imageCount"] == 2
    assert result["structuredContent"]["stdout"] == "drawn\n"


async def test_shell_commands_report_exit_codes_and_exec_command_and_args_keeps_words(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    environment_id = await launch(http, url, key)
    sh = "runShellCommandInRemoteEnvironment"
    failed = await call_tool(
        http, url, key, sh, {"environmentId": environment_id, "shellCommand": "echo oops >&2; exit 3"}
    )
    assert failed["structuredContent"]["exitCode"] == 3
    assert failed["structuredContent"]["stderr"] == "oops\n"
    assert "exit code: 3" in text_of(failed)
    tricky = "a b 'c' \"d\" $HOME; rm -rf /"
    argv = await call_tool(
        http,
        url,
        key,
        sh,
        {
            "environmentId": environment_id,
            "execCommandAndArgs": ["python3", "-c", "import sys; print(sys.argv[1:])", tricky, ""],
        },
    )
    assert argv["structuredContent"]["exitCode"] == 0, argv
    assert argv["structuredContent"]["stdout"] == repr([tricky, ""]) + "\n"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"shellCommand": "true", "execCommandAndArgs": ["true"]}, "not both"),
        ({}, "neither"),
        ({"execCommandAndArgs": "ls"}, "array of strings"),
        ({"execCommandAndArgs": []}, "array of strings"),
        ({"shellCommand": 5}, "must be a string"),
        ({"shellCommand": "true", "cwd": "/"}, "Unknown argument"),
    ],
)
async def test_bad_shell_arguments_are_clear_tool_errors(
    http: aiohttp.ClientSession, url: str, key: str, arguments: dict[str, Any], expected: str
) -> None:
    environment_id = await launch(http, url, key)
    result = await call_tool(
        http, url, key, "runShellCommandInRemoteEnvironment", {"environmentId": environment_id, **arguments}
    )
    assert result["isError"] is True
    assert expected in text_of(result)
    assert result["structuredContent"]["error"] == text_of(result)


@pytest.mark.parametrize("tool", ["runPythonCodeInRemoteEnvironment", "runShellCommandInRemoteEnvironment"])
async def test_an_unknown_environment_says_to_launch_again(
    http: aiohttp.ClientSession, url: str, key: str, tool: str
) -> None:
    arguments = {
        "environmentId": "00000000-0000-4000-8000-000000000000",
        "pythonCode": "1",
        "shellCommand": "true",
    }
    arguments.pop("shellCommand" if tool.startswith("runPython") else "pythonCode")
    result = await call_tool(http, url, key, tool, arguments)
    assert result["isError"] is True
    assert "launchShell" in text_of(result)
    assert "does not exist" in text_of(result)


async def test_an_environment_whose_session_was_deleted_is_gone(
    http: aiohttp.ClientSession, url: str, key: str, module_pool: LocalSessionPool
) -> None:
    environment_id = await launch(http, url, key)
    py = "runPythonCodeInRemoteEnvironment"
    await call_tool(http, url, key, py, {"environmentId": environment_id, "pythonCode": "y = 1"})
    assert await module_pool.manager.delete(environment_id)
    result = await call_tool(http, url, key, py, {"environmentId": environment_id, "pythonCode": "y"})
    assert result["isError"] is True
    assert "launchShell" in text_of(result)
    assert module_pool.manager.get(environment_id) is None  # not silently re-created empty


async def test_timeouts_follow_the_pool_limit_and_keep_partial_output(http: aiohttp.ClientSession) -> None:
    async with LocalSessionPool(mcp=True, max_execution_seconds=3, ready_sessions=1) as pool:
        url, key = pool.mcp_endpoint, pool.mcp_api_key
        environment_id = await launch(http, url, key)
        py = "runPythonCodeInRemoteEnvironment"
        await call_tool(http, url, key, py, {"environmentId": environment_id, "pythonCode": "import time"})
        python = await call_tool(
            http,
            url,
            key,
            py,
            {"environmentId": environment_id, "pythonCode": "print('before', flush=True)\ntime.sleep(60)"},
        )
        assert python["isError"] is True
        assert python["structuredContent"]["status"] == "TimedOut"
        assert python["structuredContent"]["stdout"] == "before\n"
        shell = await call_tool(
            http,
            url,
            key,
            "runShellCommandInRemoteEnvironment",
            {"environmentId": environment_id, "shellCommand": "echo start; sleep 60"},
        )
        assert shell["isError"] is True
        assert shell["structuredContent"]["timedOut"] is True
        assert shell["structuredContent"]["exitCode"] == 124
        assert shell["structuredContent"]["stdout"] == "start\n"


async def test_environments_expire_with_the_cooldown(http: aiohttp.ClientSession) -> None:
    async with LocalSessionPool(mcp=True, cooldown_period_seconds=1, ready_sessions=0) as pool:
        url, key = pool.mcp_endpoint, pool.mcp_api_key
        sh = "runShellCommandInRemoteEnvironment"
        used = await launch(http, url, key)
        never_used = await launch(http, url, key)
        first = await call_tool(http, url, key, sh, {"environmentId": used, "shellCommand": "echo hi"})
        assert first["structuredContent"]["stdout"] == "hi\n"
        for _ in range(100):  # the reaper runs every cooldown/4 seconds
            if pool.manager.get(used) is None:
                break
            await asyncio.sleep(0.1)
        assert pool.manager.get(used) is None
        for environment_id in (used, never_used):
            result = await call_tool(
                http, url, key, sh, {"environmentId": environment_id, "shellCommand": "echo hi"}
            )
            assert result["isError"] is True
            assert "launchShell" in text_of(result)
        fresh = await launch(http, url, key)
        again = await call_tool(http, url, key, sh, {"environmentId": fresh, "shellCommand": "echo hi"})
        assert again["isError"] is False


async def test_a_shell_pool_serves_every_tool(http: aiohttp.ClientSession) -> None:
    async with LocalSessionPool(mcp=True, pool_type="Shell", ready_sessions=0) as pool:
        url, key = pool.mcp_endpoint, pool.mcp_api_key
        environment_id = await launch(http, url, key)
        python = await call_tool(
            http,
            url,
            key,
            "runPythonCodeInRemoteEnvironment",
            {"environmentId": environment_id, "pythonCode": "import sys; print(sys.version_info[0])"},
        )
        assert python["isError"] is False, python
        assert python["structuredContent"]["stdout"] == "3\n"
        failing = await call_tool(
            http,
            url,
            key,
            "runPythonCodeInRemoteEnvironment",
            {"environmentId": environment_id, "pythonCode": "1/0"},
        )
        assert failing["isError"] is True
        assert "ZeroDivisionError" in failing["structuredContent"]["stderr"]
        shell = await call_tool(
            http,
            url,
            key,
            "runShellCommandInRemoteEnvironment",
            {"environmentId": environment_id, "execCommandAndArgs": ["echo", "a  b"]},
        )
        assert shell["structuredContent"]["stdout"] == "a  b\n"


async def test_every_result_has_content_and_structured_content(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    environment_id = await launch(http, url, key)
    calls = [
        ("launchShell", {}),
        ("runPythonCodeInRemoteEnvironment", {"environmentId": environment_id, "pythonCode": "pass"}),
        ("runShellCommandInRemoteEnvironment", {"environmentId": environment_id, "shellCommand": "true"}),
        ("runShellCommandInRemoteEnvironment", {"environmentId": "gone"}),
    ]
    for name, arguments in calls:
        result = await call_tool(http, url, key, name, arguments)
        assert result["content"], name
        assert result["content"][0]["type"] == "text"
        assert isinstance(result["structuredContent"], dict), name


async def test_unknown_tools_and_methods_are_json_rpc_errors(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    tool = await post(
        http, url, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm"}}, key=key
    )
    assert tool.status == 200
    assert tool.error["code"] == -32602
    method = await post(http, url, {"jsonrpc": "2.0", "id": 2, "method": "tools.list"}, key=key)
    assert method.error["code"] == -32601
    assert method.json()["id"] == 2


async def test_the_endpoint_is_not_served_at_the_root_path_unless_asked(
    http: aiohttp.ClientSession, module_pool: LocalSessionPool, key: str
) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    # As on Azure, the server root is no pool endpoint: bearer auth first, then a 404 naming the pool.
    refused = await post(
        http,
        module_pool.base_url + "/mcp",
        ping,
        key=key,
        headers={"Authorization": f"Bearer {module_pool.api_key}"},
    )
    assert refused.status == 404
    assert module_pool.endpoint in refused.json()["error"]["message"]
    module_pool.serve_at_root = True
    try:
        reply = await post(http, module_pool.base_url + "/mcp", ping, key=key)
    finally:
        module_pool.serve_at_root = False
    assert reply.result == {}
    other_pool = module_pool.mcp_endpoint.replace(module_pool.pool_name, "otherpool")
    async with http.post(
        other_pool, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"x-ms-apikey": key}
    ) as resp:
        # Not this pool's MCP endpoint: the data plane answers it, bearer auth first.
        assert resp.status == 401


async def test_concurrent_calls_in_one_environment_run_one_after_another(
    http: aiohttp.ClientSession, url: str, key: str
) -> None:
    environment_id = await launch(http, url, key)
    py = "runPythonCodeInRemoteEnvironment"
    await call_tool(http, url, key, py, {"environmentId": environment_id, "pythonCode": "n = 0"})
    results = await asyncio.gather(
        *(
            call_tool(http, url, key, py, {"environmentId": environment_id, "pythonCode": "n += 1\nn"}, i)
            for i in range(5)
        )
    )
    assert sorted(r["structuredContent"]["executionResult"] for r in results) == [1, 2, 3, 4, 5]


async def test_mcp_can_be_enabled_and_disabled_on_a_running_pool(http: aiohttp.ClientSession) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with LocalSessionPool(ready_sessions=0) as pool:
        assert pool.mcp_enabled is False
        with pytest.raises(RuntimeError, match="enable_mcp"):
            _ = pool.mcp_api_key
        url = pool.endpoint + "/mcp"
        # Off: /mcp is no operation of the data plane (bearer auth first, then 404).
        off = await post(http, url, ping, key="anything", headers={"Authorization": f"Bearer {pool.api_key}"})
        assert off.status == 404
        key = pool.enable_mcp("chosen-key")
        assert key == pool.mcp_api_key == "chosen-key"
        assert pool.mcp_endpoint == url
        assert (await post(http, url, ping, key=key)).result == {}
        pool.disable_mcp()
        assert (await post(http, url, ping, key=key)).status == 401
