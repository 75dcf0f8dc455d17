"""A scripted chat client: an Agent Framework model stand-in that replays fixed turns.

For tests and offline demos (the examples use it when no model key is set). Each model call
takes the next turn of the script: a :class:`ToolCall` (or a list of them, called together), or
a string (the final reply of that run). Tool calls really run, through Agent Framework's
function-invocation loop, so everything but the model is real.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from agent_framework import (
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
)

__all__ = ["ScriptExhaustedError", "ScriptedChatClient", "ScriptedTurn", "ToolCall"]


@dataclass(frozen=True)
class ToolCall:
    """One function call the scripted model makes."""

    name: str
    """The tool to call."""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """Its arguments."""


ScriptedTurn: TypeAlias = "str | ToolCall | Sequence[ToolCall]"
"""One model answer: a final reply, one tool call, or several tool calls at once."""


class ScriptExhaustedError(RuntimeError):
    """The agent asked the scripted model for more turns than the script has."""


class ScriptedChatClient(FunctionInvocationLayer[Any], ChatMiddlewareLayer[Any], BaseChatClient[Any]):
    """Replays ``turns`` in order, one per model call; records what the model was sent.

    Attributes:
        calls: The messages of every model call, in order (to check what a tool returned).
    """

    OTEL_PROVIDER_NAME = "scripted"

    def __init__(self, turns: Sequence[ScriptedTurn], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._turns: list[ScriptedTurn] = list(turns)
        self.calls: list[list[Message]] = []

    @staticmethod
    def get_shell_tool(**kwargs: Any) -> Any:
        """Agent Framework's ``SupportsShellTool``: the scripted model calls a shell function by
        name, like any tool, so the function (``func=``, e.g. ``LocalShellTool.as_function()`` or
        ``DynamicSessionsShellExecutor.as_function()``) is the tool."""
        func = kwargs.get("func")
        if func is None:
            raise ValueError("the scripted client runs a local shell function: pass func=")
        return func

    @property
    def remaining(self) -> int:
        """Turns not replayed yet."""
        return len(self._turns)

    def _inner_get_response(
        self,
        *,
        messages: Sequence[Message],
        stream: bool,
        options: Mapping[str, Any],
        **kwargs: Any,
    ) -> Awaitable[ChatResponse] | ResponseStream[ChatResponseUpdate, ChatResponse]:
        if not stream:
            return self._respond(list(messages))

        async def updates() -> AsyncIterator[ChatResponseUpdate]:
            # A scripted turn arrives whole: one update carrying all of its contents.
            response = await self._respond(list(messages))
            for message in response.messages:
                yield ChatResponseUpdate(
                    role="assistant", contents=list(message.contents), response_id=response.response_id
                )

        return ResponseStream(updates(), finalizer=ChatResponse.from_updates)

    async def _respond(self, messages: list[Message]) -> ChatResponse:
        self.calls.append(messages)
        if not self._turns:
            raise ScriptExhaustedError(f"the script has no turn left for model call {len(self.calls)}")
        turn = self._turns.pop(0)
        if isinstance(turn, str):
            contents = [Content.from_text(turn)]
        else:
            calls = [turn] if isinstance(turn, ToolCall) else list(turn)
            contents = [
                Content.from_function_call(
                    f"call_{uuid.uuid4().hex[:12]}", call.name, arguments=json.dumps(dict(call.arguments))
                )
                for call in calls
            ]
        return ChatResponse(
            messages=[Message(role="assistant", contents=contents)],
            response_id=f"scripted-{len(self.calls)}",
        )
