"""Shared plumbing of the Agent Framework examples: the chat client and how to show a run.

The model half follows ``_common.py``: a scripted chat client that replays the example's turns
(tool calls that really run, then replies) unless ``OPENAI_API_KEY`` or ``AZURE_OPENAI_ENDPOINT`` +
``AZURE_OPENAI_DEPLOYMENT`` are set; a real model then needs ``pip install agent-framework-openai``.
The session pool half is ``_common.session_pool`` (a local pool unless
``ACA_POOL_MANAGEMENT_ENDPOINT`` is set).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from _common import fail, uses_scripted_model
from agent_framework import AgentResponse, Content

from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ScriptedTurn

__all__ = ["chat_client", "print_run", "tool_failures"]

CODE_HINT = (
    "Use the execute_code tool to run Python; state persists between calls. Read input files from "
    "and save outputs to the working directory /mnt/data with relative names. Print what you need "
    "to see. Be brief."
)
"""Instructions that tell a real model how to work with the session."""


def chat_client(scripted_turns: Sequence[ScriptedTurn]) -> Any:
    """The chat client of one agent: scripted unless a model is configured."""
    if uses_scripted_model():
        return ScriptedChatClient(scripted_turns)
    try:
        from agent_framework.openai import OpenAIChatClient
    except ImportError as exc:
        fail(f"a real model needs agent-framework-openai ({exc}): pip install agent-framework-openai")
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChatClient(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    options: dict[str, Any] = {
        "model": os.environ["AZURE_OPENAI_DEPLOYMENT"],
        "azure_endpoint": os.environ["AZURE_OPENAI_ENDPOINT"],
    }
    if os.environ.get("AZURE_OPENAI_API_VERSION"):
        options["api_version"] = os.environ["AZURE_OPENAI_API_VERSION"]
    if os.environ.get("AZURE_OPENAI_API_KEY"):
        options["api_key"] = os.environ["AZURE_OPENAI_API_KEY"]
    else:
        from azure.identity import DefaultAzureCredential

        options["credential"] = DefaultAzureCredential()
    return OpenAIChatClient(**options)


def _describe(content: Content) -> str:
    if content.type == "text":
        return content.text or ""
    if content.type == "data":
        return f"[image {content.name or ''} {content.media_type}]"
    if content.type == "error":
        return f"[error {content.error_code}: {content.message}]"
    return f"[{content.type}]"


def print_run(agent_name: str, response: AgentResponse) -> None:
    """Print a run as a transcript: tool calls with their code, tool results, the reply."""
    for message in response.messages:
        for content in message.contents:
            if content.type == "function_call":
                arguments = content.parse_arguments() or {}
                body = arguments.get("code") or arguments.get("command")
                shown = f"\n{body}" if isinstance(body, str) else f" {arguments}"
                print(f"---------- ({agent_name}) calls {content.name}:{shown}", flush=True)
            elif content.type == "function_result":
                parts = content.items or [Content.from_text(str(content.result))]
                print("---------- (tool result)\n" + "\n".join(_describe(part) for part in parts), flush=True)
            elif content.type == "text" and content.text:
                print(f"---------- ({agent_name})\n{content.text}", flush=True)


def tool_failures(response: AgentResponse) -> list[str]:
    """The tool results of a run that report a failure."""
    failures: list[str] = []
    for message in response.messages:
        for content in message.contents:
            if content.type != "function_result":
                continue
            for part in content.items or []:
                if part.type == "error":
                    details = f": {part.error_details}" if part.error_details else ""
                    failures.append(f"{part.message or ''}{details}".strip())
    return failures
