"""A code block's output while it runs, as AutoGen agent events (needs ``autogen-agentchat``).

``CodeExecutorAgent`` awaits ``execute_code_blocks`` and yields nothing until it returns: it has
no hook for output during a run. :class:`StreamingCodeExecutorAgent` adds one without changing
anything else it does: it runs the base agent's own ``on_messages_stream`` in a task and, in
between its events, yields a :class:`CodeOutputEvent` for each piece of output the executor
hands to :func:`relay_to_agent`::

    executor = ACASandboxCodeExecutor(client, on_output=relay_to_agent)
    agent = StreamingCodeExecutorAgent("runner", executor, model_client=...)
    await Console(agent.run_stream(task=...))          # prints the output as the block runs
    team = RoundRobinGroupChat([...], custom_message_types=[CodeOutputEvent])

:func:`relay_to_agent` finds the agent through a context variable the agent sets in the task
that runs its turn (the executor's block runs in a task started from it), so one executor
serves one agent without being told which. Outside an agent's turn it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from contextvars import ContextVar
from typing import Literal

from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken

from autogen_aca_sessions.client.sandbox_stream import OutputChunk, OutputStream

__all__ = ["CodeOutputEvent", "StreamingCodeExecutorAgent", "relay_to_agent"]

_Item = BaseAgentEvent | BaseChatMessage | Response

_SINK: ContextVar[Callable[[OutputChunk], None] | None] = ContextVar("aca_code_output_sink", default=None)


class CodeOutputEvent(BaseAgentEvent):
    """A piece of a code block's output, yielded while the block runs."""

    stream: OutputStream
    """Which stream it came from (stdout or stderr)."""
    content: str
    """The text."""
    type: Literal["CodeOutputEvent"] = "CodeOutputEvent"
    """The message type (for AutoGen's message factory)."""

    def to_text(self) -> str:
        return self.content


def relay_to_agent(chunk: OutputChunk) -> None:
    """An ``on_output`` for :class:`~autogen_aca_sessions.executor.ACASandboxCodeExecutor`: hands
    ``chunk`` to the :class:`StreamingCodeExecutorAgent` whose turn runs the block (nothing
    outside one). To also print or log chunks, call this from your own callback."""
    sink = _SINK.get()
    if sink is not None:
        sink(chunk)


class _End:
    """Marks the end of the base agent's stream in the queue."""


class StreamingCodeExecutorAgent(CodeExecutorAgent):
    """``CodeExecutorAgent`` that also yields :class:`CodeOutputEvent` s while a block runs (give
    its executor ``on_output=relay_to_agent``). Everything else is the base agent's, unchanged:
    same arguments, same events in the same order, same final response."""

    async def on_messages_stream(
        self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken
    ) -> AsyncGenerator[_Item, None]:
        queue: asyncio.Queue[_Item | _End | BaseException] = asyncio.Queue()
        inner = super().on_messages_stream(messages, cancellation_token)
        source = self.name

        def sink(chunk: OutputChunk) -> None:
            queue.put_nowait(CodeOutputEvent(source=source, stream=chunk.stream, content=chunk.text))

        async def pump() -> None:
            # Runs in a task of its own: the context variable is set in that task's context only.
            _SINK.set(sink)
            try:
                async for item in inner:
                    queue.put_nowait(item)
            except BaseException as exc:
                # Handed to the consumer, which raises it: a CancelledError too (the cancellation
                # token's, from the block). When the consumer itself cancelled this task, it no
                # longer reads the queue and the item is dropped.
                queue.put_nowait(exc)
            else:
                queue.put_nowait(_End())

        task = asyncio.ensure_future(pump())
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _End):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
