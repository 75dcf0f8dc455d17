"""Real Agent Framework agents, a scripted model, a real local pool: the provider, approvals, images."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework")

from agent_framework import Agent, Content, Message

from autogen_aca_sessions.agent_framework import (
    STATE_KEY,
    DynamicSessions,
    DynamicSessionsCodeActProvider,
    DynamicSessionsConfig,
    session_tools,
)
from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ToolCall
from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")
POOL_OPTIONS = {"ready_sessions": 1, "max_execution_seconds": 30}


def growth(values: list[float]) -> list[float]:
    """Relative change between consecutive values."""
    return [values[i + 1] / values[i] - 1 for i in range(len(values) - 1)]


def tool_results(client: ScriptedChatClient, call_index: int) -> list[Content]:
    """The function results the model received in one of its calls."""
    return [
        content
        for message in client.calls[call_index]
        for content in message.contents
        if content.type == "function_result"
    ]


def result_text(result: Content) -> str:
    return "\n".join(item.text or "" for item in (result.items or []) if item.type == "text")


@pytest_asyncio.fixture(loop_scope="module")
async def sessions(module_pool: LocalSessionPool) -> AsyncIterator[DynamicSessions]:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint, timeout_seconds=20)
    async with DynamicSessions(config, credential=module_pool.credential, functions=[growth]) as owned:
        yield owned


async def test_a_multi_turn_conversation_keeps_state_in_one_session(sessions: DynamicSessions) -> None:
    client = ScriptedChatClient(
        [
            ToolCall("execute_code", {"code": "prices = [100, 110, 121]\nprint(len(prices))"}),
            "Loaded 3 prices.",
            ToolCall(
                "execute_code",
                {"code": "from functions import growth\n[round(g, 3) for g in growth(prices)]"},
            ),
            "Growth is 10% per step.",
        ]
    )
    agent = Agent(client=client, context_providers=[DynamicSessionsCodeActProvider(sessions)])
    conversation = agent.create_session()

    first = await agent.run("Load the prices.", session=conversation)
    second = await agent.run("How fast do they grow?", session=conversation)

    assert first.text == "Loaded 3 prices."
    assert second.text == "Growth is 10% per step."
    assert client.remaining == 0
    assert "stdout:\n3" in result_text(tool_results(client, 1)[-1])
    assert "value: [0.1, 0.1]" in result_text(tool_results(client, 3)[-1])
    assert conversation.state[STATE_KEY]["identifier"] in sessions.created_identifiers


async def test_two_conversations_of_one_agent_use_two_sessions(sessions: DynamicSessions) -> None:
    client = ScriptedChatClient(
        [
            ToolCall("execute_code", {"code": "owner = 'first'"}),
            "ok",
            ToolCall("execute_code", {"code": "print('owner' in globals())"}),
            "checked",
        ]
    )
    agent = Agent(client=client, context_providers=[DynamicSessionsCodeActProvider(sessions)])
    first, second = agent.create_session(), agent.create_session()

    await agent.run("one", session=first)
    await agent.run("two", session=second)

    assert "stdout:\nFalse" in result_text(tool_results(client, 3)[-1])
    assert first.state[STATE_KEY]["identifier"] != second.state[STATE_KEY]["identifier"]


async def test_the_model_receives_a_figure_as_image_content(sessions: DynamicSessions) -> None:
    client = ScriptedChatClient(
        [
            ToolCall(
                "execute_code",
                {"code": "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nplt.show()"},
            ),
            "Here is the chart.",
        ]
    )
    agent = Agent(client=client, context_providers=[DynamicSessionsCodeActProvider(sessions)])

    await agent.run("Draw it.", session=agent.create_session())

    items = tool_results(client, 1)[-1].items or []
    images = [item for item in items if item.type == "data"]
    assert [image.media_type for image in images] == ["image/png"]


async def test_the_instructions_name_packages_files_and_functions(sessions: DynamicSessions) -> None:
    provider = DynamicSessionsCodeActProvider(sessions)
    client = ScriptedChatClient(["ready"])
    agent = Agent(client=client, context_providers=[provider])
    conversation = agent.create_session()
    await sessions.upload(conversation, "orders.csv", b"id,amount\n1,5\n")

    instructions = await provider.instructions(conversation)
    await agent.run("hi", session=conversation)

    assert "`execute_code`" in instructions
    assert "pandas" in instructions
    assert "matplotlib" in instructions
    assert "- orders.csv (14 bytes)" in instructions
    assert "from functions import <name>" in instructions
    assert "def growth(values: list[float]) -> list[float]:" in instructions
    assert "Relative change between consecutive values." in instructions


async def test_approval_mode_holds_the_code_until_a_person_approves(module_pool: LocalSessionPool) -> None:
    config = DynamicSessionsConfig(
        pool_management_endpoint=module_pool.endpoint, approval_mode="always_require"
    )
    async with DynamicSessionsCodeActProvider(config, credential=module_pool.api_key) as provider:
        client = ScriptedChatClient(
            [
                ToolCall("execute_code", {"code": "approved_run = 'yes'\nprint(approved_run)"}),
                "It ran.",
            ]
        )
        agent = Agent(client=client, context_providers=[provider])
        conversation = agent.create_session()

        held = await agent.run("Run it.", session=conversation)

        requests = held.user_input_requests
        assert len(requests) == 1
        assert requests[0].type == "function_approval_request"
        assert requests[0].function_call is not None
        assert requests[0].function_call.name == "execute_code"
        # Nothing ran: the conversation has no session yet.
        assert STATE_KEY not in conversation.state

        approved = await agent.run(
            Message(role="user", contents=[requests[0].to_function_approval_response(approved=True)]),
            session=conversation,
        )

        assert approved.text == "It ran."
        assert "stdout:\nyes" in result_text(tool_results(client, 1)[-1])


async def test_a_rejected_approval_runs_nothing(module_pool: LocalSessionPool) -> None:
    config = DynamicSessionsConfig(
        pool_management_endpoint=module_pool.endpoint, approval_mode="always_require"
    )
    async with DynamicSessionsCodeActProvider(config, credential=module_pool.api_key) as provider:
        client = ScriptedChatClient([ToolCall("execute_code", {"code": "print('ran')"}), "Not run."])
        agent = Agent(client=client, context_providers=[provider])
        conversation = agent.create_session()

        held = await agent.run("Run it.", session=conversation)
        rejected = await agent.run(
            Message(role="user", contents=[held.user_input_requests[0].to_function_approval_response(False)]),
            session=conversation,
        )

        assert rejected.text == "Not run."
        assert STATE_KEY not in conversation.state
        assert provider.sessions.created_identifiers == frozenset()


async def test_the_tools_work_without_the_provider(sessions: DynamicSessions) -> None:
    client = ScriptedChatClient(
        [ToolCall("execute_code", {"code": "a = 3"}), "ok", ToolCall("execute_code", {"code": "a * 3"}), "9"]
    )
    agent = Agent(client=client, tools=session_tools(sessions))
    conversation = agent.create_session()

    await agent.run("set a", session=conversation)
    await agent.run("triple it", session=conversation)

    assert "value: 9" in result_text(tool_results(client, 3)[-1])


async def test_parallel_tool_calls_in_one_turn_run_one_after_the_other_in_the_same_session(
    sessions: DynamicSessions,
) -> None:
    client = ScriptedChatClient(
        [
            [
                ToolCall("execute_code", {"code": "import time\ntime.sleep(1)\nx = 1"}),
                ToolCall("execute_code", {"code": "y = 2"}),
            ],
            ToolCall("execute_code", {"code": "x + y"}),
            "3",
        ]
    )
    agent = Agent(client=client, context_providers=[DynamicSessionsCodeActProvider(sessions)])

    reply = await agent.run("add", session=agent.create_session())

    assert reply.text == "3"
    firsts = tool_results(client, 1)
    assert len(firsts) == 2
    assert all("status: succeeded" in result_text(result) for result in firsts)
    assert "value: 3" in result_text(tool_results(client, 2)[-1])
