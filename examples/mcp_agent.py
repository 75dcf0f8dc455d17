"""An agent that uses the session pool through MCP only: Agent Framework's ``MCPStreamableHTTPTool``.

The agent never sees the data plane: it talks to the pool's MCP server (``{endpoint}/mcp``, key in
``x-ms-apikey``), launches an environment, runs Python and a shell command in it, and answers.
The same code works against an Azure pool with MCP enabled; only the URL and key change.

Run it::

    pip install -e '.[local]' agent-framework-core 'mcp>=2.3,<3' 'tenacity>=9.1.4,<9.2'
    python examples/mcp_agent.py

What it uses, and how to switch to the real thing:

* Model: a scripted chat client that replays the turns below (it reads the tool results, so the
  environment id and the numbers it reports are real). ``OPENAI_API_KEY`` (optional
  ``OPENAI_MODEL``), or ``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_DEPLOYMENT`` (+
  ``AZURE_OPENAI_API_KEY``, else Entra ID), use a real model (``pip install agent-framework-openai``).
* Pool: a ``LocalSessionPool(mcp=True)`` started for the run. ``ACA_SESSIONS_MCP_ENDPOINT`` and
  ``ACA_SESSIONS_MCP_API_KEY`` point it at another MCP server: ``aca-sessions serve --mcp`` prints
  both, and for an Azure pool they are ``properties.mcpServerSettings.mcpServerEndpoint`` and the
  ``apiKey`` of ``fetchMcpServerCredentials``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _requirements import AGENT_FRAMEWORK, MCP_2, MCP_AGENT_INSTALL, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AGENT_FRAMEWORK, *MCP_2, install=MCP_AGENT_INSTALL, local_pool_unless="ACA_SESSIONS_MCP_ENDPOINT")

from _common import fail, model_description, run_main, uses_scripted_model
from agent_framework import (
    Agent,
    BaseChatClient,
    ChatResponse,
    Content,
    FunctionInvocationLayer,
    MCPStreamableHTTPTool,
    Message,
)

from autogen_aca_sessions import McpConnection
from mcp import MCPDeprecationWarning

# Agent Framework's MCP tool pings the server with a method mcp 2.x marks deprecated; the warning
# is about that library's internals, and nothing a user of this example can act on.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning, module=r"agent_framework\.")

TASK = (
    "Using the sandboxed environment tools, compute the sum of the first 100 prime numbers with Python, "
    "then check which Python version the environment runs with a shell command. Report both."
)

INSTRUCTIONS = (
    "You solve tasks by running code in a remote sandbox reached through MCP tools. Launch one "
    "environment with launchShell, then reuse its environmentId for every run. Report results exactly."
)

PRIMES_CODE = """\
primes = []
n = 2
while len(primes) < 100:
    if all(n % p for p in primes if p * p <= n):
        primes.append(n)
    n += 1
print(f"first prime: {primes[0]}, 100th prime: {primes[-1]}")
sum(primes)
"""

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ScriptedChatClient(FunctionInvocationLayer[Any], BaseChatClient[Any]):
    """A chat client replaying this example's turns; Agent Framework invokes the tools it asks for.

    Each turn reads the tool results so far, so what it reports comes from the sandbox.
    """

    async def _inner_get_response(  # type: ignore[override]
        self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
    ) -> Any:
        if stream:
            raise NotImplementedError("the scripted client answers without streaming")
        results = _function_results(messages)
        environment_id = next((m.group(0) for r in results if (m := _UUID.search(r))), None)
        if environment_id is None:
            reply = _call("launchShell", {})
        elif len(results) == 1:
            reply = _call(
                "runPythonCodeInRemoteEnvironment",
                {"environmentId": environment_id, "pythonCode": PRIMES_CODE},
            )
        elif len(results) == 2:
            reply = _call(
                "runShellCommandInRemoteEnvironment",
                {"environmentId": environment_id, "execCommandAndArgs": ["python3", "--version"]},
            )
        else:
            total = _field(results[1], "executionResult")
            version = (_field(results[2], "stdout") or _field(results[2], "stderr") or "").strip()
            reply = Message(
                role="assistant",
                contents=[
                    Content.from_text(
                        f"The sum of the first 100 primes is {total}. The environment runs {version}."
                    )
                ],
            )
        return ChatResponse(messages=[reply])


def _call(name: str, arguments: dict[str, Any]) -> Message:
    return Message(
        role="assistant",
        contents=[
            Content.from_function_call(
                call_id=f"call-{name}-{len(json.dumps(arguments))}", name=name, arguments=arguments
            )
        ],
    )


def _function_results(messages: Sequence[Message]) -> list[str]:
    texts: list[str] = []
    for message in messages:
        for content in message.contents:
            if content.type == "function_result":
                texts.append(_as_text(content.result))
    return texts


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_as_text(item) for item in value)
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return text
    try:
        return json.dumps(value, default=str)
    except TypeError:
        return str(value)


def _field(result_text: str, name: str) -> Any:
    """A field of a tool's structured result (Agent Framework hands it over as JSON text)."""
    try:
        data = json.loads(result_text)
    except ValueError:
        match = re.search(rf'"{name}"\s*:\s*("(?:[^"\\]|\\.)*"|[-\d.]+)', result_text)
        return json.loads(match.group(1)) if match else None
    return data.get(name) if isinstance(data, dict) else None


def chat_client() -> Any:
    """The scripted client, or a real OpenAI / Azure OpenAI one when configured."""
    if uses_scripted_model():
        return ScriptedChatClient()
    try:
        from agent_framework.openai import OpenAIChatCompletionClient
    except ImportError as exc:
        fail(f"a real model needs agent-framework-openai ({exc}): pip install agent-framework-openai")
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    options: dict[str, Any] = {
        "model": os.environ["AZURE_OPENAI_DEPLOYMENT"],
        "azure_endpoint": os.environ["AZURE_OPENAI_ENDPOINT"],
    }
    if os.environ.get("AZURE_OPENAI_API_KEY"):
        options["api_key"] = os.environ["AZURE_OPENAI_API_KEY"]
    else:
        from azure.identity.aio import DefaultAzureCredential

        options["credential"] = DefaultAzureCredential()
    return OpenAIChatCompletionClient(**options)


@asynccontextmanager
async def mcp_server() -> AsyncIterator[tuple[McpConnection, str]]:
    """The MCP server to use: the one named by the environment, else a local pool's."""
    url = os.environ.get("ACA_SESSIONS_MCP_ENDPOINT", "").strip()
    key = os.environ.get("ACA_SESSIONS_MCP_API_KEY", "").strip()
    if url and key:
        yield McpConnection(url, key), f"MCP server {url}"
        return
    if url or key:
        fail(
            "set both ACA_SESSIONS_MCP_ENDPOINT and ACA_SESSIONS_MCP_API_KEY "
            "(aca-sessions serve --mcp prints them)"
        )
    from autogen_aca_sessions import LocalSessionPool

    sandbox = os.environ.get("ACA_SESSIONS_SANDBOX", "auto").strip() or "auto"
    async with LocalSessionPool(mcp=True, ready_sessions=1, sandbox=sandbox) as pool:
        yield (
            McpConnection.from_pool(pool),
            f"local session pool's MCP server {pool.mcp_endpoint} (isolation: {pool.isolation})",
        )


async def main() -> None:
    print(f"Model: {model_description()}")
    async with mcp_server() as (conn, description):
        print(f"Pool:  {description}\n")
        async with MCPStreamableHTTPTool(**conn.agent_framework_tool_kwargs()) as tools:
            agent = Agent(client=chat_client(), instructions=INSTRUCTIONS, tools=tools)
            print(f"User: {TASK}\n")
            response = await agent.run(TASK)
    calls = [c for m in response.messages for c in m.contents if c.type == "function_call"]
    for call in calls:
        print(f"[tool call] {call.name}({_as_text(call.arguments)[:120]})")
    print(f"\nAgent: {response.text}")
    if "sum of the first 100 primes is 24133" not in response.text and uses_scripted_model():
        fail("the agent did not report the sum computed in the sandbox (24133)")
    if not calls:
        fail("the agent made no tool call")


if __name__ == "__main__":
    run_main(main())
