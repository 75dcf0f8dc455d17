"""Streaming a block's output while it runs: ACASandboxCodeExecutor(on_output=...) and
StreamingCodeExecutorAgent (real autogen-agentchat), against the real local server."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import CodeExecutionEvent, CodeGenerationEvent, TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock
from autogen_ext.models.replay import ReplayChatCompletionClient
from tests.e2e._sandbox_group import served_group

from autogen_aca_sessions.client.sandboxes import OutputChunk, OutputStream, SandboxesClient
from autogen_aca_sessions.executor import ACASandboxCodeExecutor
from autogen_aca_sessions.executor.streaming_agent import (
    CodeOutputEvent,
    StreamingCodeExecutorAgent,
    relay_to_agent,
)

RG = "rg-executor-stream"
GROUP = "executor-stream-group"

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:No approval function set for CodeExecutorAgent"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[SandboxesClient]:
    async with served_group(GROUP, RG) as served:
        yield served.client


def waits_for(path: str, before: str, after: str) -> str:
    """A Python block that prints ``before``, waits until ``path`` exists, then prints ``after``."""
    return (
        f"import os, time\nprint({before!r})\n"
        f"while not os.path.exists({path!r}):\n    time.sleep(0.05)\nprint({after!r})\n"
    )


async def test_streaming_delivers_a_python_blocks_output_before_the_block_ends(
    client: SandboxesClient,
) -> None:
    chunks: list[OutputChunk] = []
    first = asyncio.Event()

    async def on_output(chunk: OutputChunk) -> None:
        chunks.append(chunk)
        if "first" in "".join(c.text for c in chunks):
            first.set()

    executor = ACASandboxCodeExecutor(client, on_output=on_output)
    try:
        blocks = [CodeBlock(code=waits_for("/root/work/go-py", "first", "second"), language="python")]
        run = asyncio.ensure_future(executor.execute_code_blocks(blocks, CancellationToken()))
        await first.wait()
        assert not run.done()
        assert executor.sandbox_id is not None
        await client.write_file(executor.sandbox_id, "/root/work/go-py", b"")
        result = await run
        assert (result.exit_code, result.output) == (0, "first\nsecond\n")
        assert "".join(c.text for c in chunks) == "first\nsecond\n"
        # Variables persist as without streaming.
        plain = await executor.execute_code_blocks(
            [CodeBlock(code="print(os.path.exists('/root/work/go-py'))", language="python")],
            CancellationToken(),
        )
        assert plain.output == "True\n"
    finally:
        await executor.stop()


async def test_streaming_delivers_a_shell_blocks_stderr_while_it_runs(client: SandboxesClient) -> None:
    chunks: list[OutputChunk] = []
    warned = asyncio.Event()

    def on_output(chunk: OutputChunk) -> None:
        chunks.append(chunk)
        if chunk.stream is OutputStream.STDERR:
            warned.set()

    executor = ACASandboxCodeExecutor(client, on_output=on_output)
    try:
        script = "echo warming >&2\nwhile [ ! -e go-sh ]; do sleep 0.05; done\necho done\nexit 3"
        run = asyncio.ensure_future(
            executor.execute_code_blocks([CodeBlock(code=script, language="sh")], CancellationToken())
        )
        await warned.wait()
        assert not run.done()
        assert executor.sandbox_id is not None
        await client.write_file(executor.sandbox_id, "/root/work/go-sh", b"")
        result = await run
        assert result.exit_code == 3
        assert result.output == "done\nwarming\n"  # the console convention: stdout, then stderr
        assert chunks[0] == OutputChunk(OutputStream.STDERR, "warming\n")
    finally:
        await executor.stop()


async def test_a_cancelled_streamed_block_is_interrupted_and_the_interpreter_keeps_its_variables(
    client: SandboxesClient,
) -> None:
    started = asyncio.Event()
    executor = ACASandboxCodeExecutor(client, on_output=lambda chunk: started.set())
    try:
        await executor.execute_code_blocks(
            [CodeBlock(code="kept = 7", language="python")], CancellationToken()
        )
        token = CancellationToken()
        block = CodeBlock(
            code="import time\nprint('looping')\nwhile True:\n    time.sleep(0.05)", language="python"
        )
        run = asyncio.ensure_future(executor.execute_code_blocks([block], token))
        await started.wait()
        token.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        after = await executor.execute_code_blocks(
            [CodeBlock(code="print(kept * 6)", language="python")], CancellationToken()
        )
        assert after.output == "42\n"
    finally:
        await executor.stop()


def streaming_agent(
    executor: ACASandboxCodeExecutor, model: ReplayChatCompletionClient | None = None
) -> StreamingCodeExecutorAgent:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return StreamingCodeExecutorAgent("runner", code_executor=executor, model_client=model)


async def test_the_agent_yields_output_events_while_the_block_runs(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client, on_output=relay_to_agent)
    agent = streaming_agent(executor)
    task = "```python\n" + waits_for("/root/work/go-agent", "first", "second") + "```"
    seen: list[object] = []
    try:
        async for item in agent.run_stream(task=task):
            seen.append(item)
            if isinstance(item, CodeOutputEvent) and item.content.startswith("first"):
                # The block is still waiting for this file: the event came while it ran.
                assert executor.sandbox_id is not None
                await client.write_file(executor.sandbox_id, "/root/work/go-agent", b"")
        outputs = [i for i in seen if isinstance(i, CodeOutputEvent)]
        assert "".join(o.content for o in outputs) == "first\nsecond\n"
        assert all(o.source == "runner" and o.stream is OutputStream.STDOUT for o in outputs)
        result = seen[-1]
        assert isinstance(result, TaskResult)
        assert isinstance(result.messages[-1], TextMessage)
        assert result.messages[-1].content == "first\nsecond\n"
    finally:
        await executor.stop()


async def test_a_team_with_a_model_shows_the_output_events_between_generation_and_execution(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client, on_output=relay_to_agent)
    model = ReplayChatCompletionClient(
        ["```python\n" + waits_for("/root/work/go-team", "working", "finished") + "```", "It finished."]
    )
    agent = streaming_agent(executor, model)
    team = RoundRobinGroupChat(
        [agent], termination_condition=MaxMessageTermination(2), custom_message_types=[CodeOutputEvent]
    )
    kinds: list[str] = []
    try:
        async for item in team.run_stream(task="Run the job."):
            if isinstance(item, TaskResult):
                continue
            kinds.append(type(item).__name__)
            if isinstance(item, CodeOutputEvent) and item.content.startswith("working"):
                assert executor.sandbox_id is not None
                await client.write_file(executor.sandbox_id, "/root/work/go-team", b"")
        generation = kinds.index(CodeGenerationEvent.__name__)
        execution = kinds.index(CodeExecutionEvent.__name__)
        between = kinds[generation + 1 : execution]
        assert between
        assert set(between) == {CodeOutputEvent.__name__}
        assert kinds[-1] == TextMessage.__name__
    finally:
        await executor.stop()


async def test_relay_to_agent_outside_an_agents_turn_does_nothing(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client, on_output=relay_to_agent)
    try:
        result = await executor.execute_code_blocks(
            [CodeBlock(code="print('alone')", language="python")], CancellationToken()
        )
        assert result.output == "alone\n"
    finally:
        await executor.stop()
