"""Calling a tool the way Agent Framework's function-calling loop does, and reading its result."""

from __future__ import annotations

from typing import Any

from agent_framework import AgentSession, Content, FunctionInvocationContext, FunctionTool


async def call(tool: FunctionTool, session: AgentSession | None, **arguments: Any) -> list[Content]:
    """Invoke ``tool`` as part of a run in ``session`` (None: outside any conversation)."""
    context = FunctionInvocationContext(function=tool, arguments=arguments, session=session)
    return await tool.invoke(arguments=arguments, context=context)


def text_of(contents: list[Content]) -> str:
    """The text parts of a tool result."""
    return "\n".join(c.text or "" for c in contents if c.type == "text")
