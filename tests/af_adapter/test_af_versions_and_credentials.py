"""Every api-version and every kind of credential the package accepts, through the Agent Framework tools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("agent_framework")

from agent_framework import AgentSession

from autogen_aca_sessions.agent_framework import (
    STATE_KEY,
    DynamicSessions,
    DynamicSessionsCodeActProvider,
    DynamicSessionsConfig,
    ExecuteCodeTool,
    ListFilesTool,
)
from autogen_aca_sessions.client import (
    AiohttpTransport,
    ApiVersion,
    SessionsClient,
    TransportRequest,
    TransportResponse,
)
from autogen_aca_sessions.local import LocalSessionPool
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
POOL_OPTIONS = {"ready_sessions": 1, "max_execution_seconds": 30}


def double(x: int) -> int:
    """Twice x."""
    return 2 * x


@pytest.mark.parametrize("api_version", list(ApiVersion), ids=[v.value for v in ApiVersion])
async def test_every_api_version_keeps_state_loads_functions_returns_images_and_lists_files(
    module_pool: LocalSessionPool, api_version: ApiVersion
) -> None:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint, api_version=api_version)
    conversation = AgentSession()
    async with DynamicSessions(config, credential=module_pool.api_key, functions=[double]) as sessions:
        tool = ExecuteCodeTool(sessions)
        await sessions.upload(conversation, "in.txt", b"21")
        first = await call(
            tool, conversation, code="n = int(open('in.txt').read())\nimport functions\nid(functions)"
        )
        second = await call(tool, conversation, code="import functions\nprint(id(functions))\ndouble(n)")
        image = await call(
            tool, conversation, code="import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"
        )
        listing = await call(ListFilesTool(sessions), conversation)
        provider_text = await DynamicSessionsCodeActProvider(sessions).instructions(conversation)
        identifier = conversation.state[STATE_KEY]["identifier"]

    assert "value: 42" in text_of(second)
    # Set up once per session: the functions module is the same object in both calls.
    module_id = text_of(first).split("value: ")[1].strip()
    assert f"stdout:\n{module_id}" in text_of(second)
    assert [c.media_type for c in image if c.type == "data"] == ["image/png"]
    assert "in.txt" in text_of(listing)
    assert "numpy" in provider_text
    assert "- in.txt" in provider_text
    remaining = {s.identifier for s in module_pool.manager.sessions()}
    if api_version.supports_session_management:
        assert identifier not in remaining  # released on close
    else:
        assert identifier in remaining  # no delete on this api-version: it expires on its own
        await module_pool.manager.delete(identifier)


def _credentials(pool: LocalSessionPool) -> dict[str, Any]:
    key = pool.api_key

    async def async_callable() -> str:
        return key

    return {
        "token credential": pool.credential,
        "async token credential": pool.async_credential,
        "callable": lambda: key,
        "async callable": async_callable,
        "key string": key,
    }


@pytest.mark.parametrize(
    "kind", ["token credential", "async token credential", "callable", "async callable", "key string"]
)
async def test_every_credential_kind_authenticates(module_pool: LocalSessionPool, kind: str) -> None:
    credential: Callable[..., Any] | Any = _credentials(module_pool)[kind]
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)

    async with DynamicSessions(config, credential=credential) as sessions:
        contents = await call(ExecuteCodeTool(sessions), AgentSession(), code="6 * 7")

    assert "value: 42" in text_of(contents)


async def test_a_wrong_key_is_a_clear_tool_result(module_pool: LocalSessionPool) -> None:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)

    async with DynamicSessions(config, credential="not-the-key") as sessions:
        contents = await call(ExecuteCodeTool(sessions), AgentSession(), code="1")

    assert "The session pool refused the call" in text_of(contents)
    assert [c.error_code for c in contents if c.type == "error"] == ["AuthenticationError"]


class RecordingTransport(AiohttpTransport):
    """The default transport, noting the method of every attempt it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []

    async def send(self, request: TransportRequest) -> TransportResponse:
        self.methods.append(request.method)
        return await super().send(request)


@pytest.mark.parametrize("tool", ["execute", "list"])
async def test_a_wrong_key_sends_one_request_and_close_deletes_nothing(
    module_pool: LocalSessionPool, tool: str
) -> None:
    # The local pool refuses the key with 401 before any session exists: a fixed key is not sent
    # twice, and there is no session to release on close.
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)
    transport = RecordingTransport()
    client = SessionsClient(module_pool.endpoint, "not-the-key", transport=transport)
    try:
        async with DynamicSessions(config, client=client) as sessions:
            chosen = ExecuteCodeTool(sessions) if tool == "execute" else ListFilesTool(sessions)
            arguments = {"code": "1"} if tool == "execute" else {}
            contents = await call(chosen, AgentSession(), **arguments)
            assert [c.error_code for c in contents if c.type == "error"] == ["AuthenticationError"]
    finally:
        await client.close()
        await transport.close()
    assert transport.methods == ["POST" if tool == "execute" else "GET"]
