"""SandboxesClient's errors explain Sandboxes answers as Sandboxes answers: a refused key points
at the sandbox group's key, an oversized file write at the service's own limit, not at a
session pool's key or dynamic sessions' 128 MB upload limit.

Against the real local server's Sandboxes data plane (real bubblewrap sandboxes) on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from autogen_aca_sessions.client.errors import AuthenticationError, PayloadTooLargeError
from autogen_aca_sessions.client.sandboxes import SandboxesClient
from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.frontends.sandboxes.handlers import MAX_FILE_BYTES

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-client-errors"
GROUP = "errors-group"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer() as served:
        await served.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield served


def _client(server: LocalSessionsServer, key: str) -> SandboxesClient:
    return SandboxesClient(
        server.base_url, subscription_id=SUB, resource_group=RG, sandbox_group=GROUP, credential=key
    )


async def test_a_wrong_key_is_explained_as_the_sandbox_groups_key_not_a_pools(
    server: LocalSessionsServer,
) -> None:
    async with _client(server, "not-the-key") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.create()
    message = str(info.value)
    assert info.value.status_code == 401
    assert "sandbox group's" in message
    assert "pool" not in message


async def test_a_file_past_the_write_cap_is_explained_by_the_services_limit_not_128_mb(
    server: LocalSessionsServer,
) -> None:
    async with _client(server, server.api_key) as client:
        sandbox = await client.create()
        with pytest.raises(PayloadTooLargeError) as info:
            await client.write_file(sandbox.id, "/mnt/data/big.bin", bytes(MAX_FILE_BYTES + 1))
        await client.delete(sandbox.id)
    message = str(info.value)
    assert info.value.error_code == "RequestBodyTooLarge"
    assert "128 MB" not in message
    assert f"{MAX_FILE_BYTES} bytes" in message
