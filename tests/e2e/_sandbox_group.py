"""A local server with one sandbox group and a client of it: what the Sandboxes e2e modules share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions.client.sandboxes import SandboxesClient
from autogen_aca_sessions.local import LocalSessionsServer

SUB = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class ServedGroup:
    """The server and a client of its sandbox group."""

    server: LocalSessionsServer
    client: SandboxesClient


@contextlib.asynccontextmanager
async def served_group(group: str, resource_group: str) -> AsyncIterator[ServedGroup]:
    """A fresh server on loopback with ``group`` created in ``resource_group``, and its client."""
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group(group, subscription=SUB, resource_group=resource_group)
        async with SandboxesClient(
            server.base_url,
            subscription_id=SUB,
            resource_group=resource_group,
            sandbox_group=group,
            credential=server.api_key,
        ) as client:
            yield ServedGroup(server, client)


def py(code: str) -> CodeBlock:
    """A Python code block."""
    return CodeBlock(code=code, language="python")
