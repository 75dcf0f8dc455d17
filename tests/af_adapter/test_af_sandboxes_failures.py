"""The Agent Framework tools on ACA Sandboxes name the sandbox group in the failures a model and a
user read (a refused key, an untrusted certificate), not a session pool; and an untrusted local
certificate says how to trust it. Real agents' tools, the real local server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework")

from agent_framework import AgentSession

from autogen_aca_sessions.agent_framework import ExecuteCodeTool, Sandboxes, SandboxesConfig
from autogen_aca_sessions.local import LocalSessionsServer
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-af-failures"
GROUP = "af-failures"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tls_server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(tls=True) as running:
        await running.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    # Plain http: aiohttp reads SSL_CERT_FILE once, at import, so a test cannot set it later.
    async with LocalSessionsServer() as running:
        await running.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield running


def _config(server: LocalSessionsServer) -> SandboxesConfig:
    return SandboxesConfig(
        endpoint=server.base_url, subscription_id=SUB, resource_group=RG, sandbox_group=GROUP
    )


async def test_an_untrusted_certificate_names_the_sandbox_group_and_how_to_trust_it(
    tls_server: LocalSessionsServer,
) -> None:
    async with Sandboxes(_config(tls_server), credential=tls_server.api_key) as sandboxes:
        contents = await call(ExecuteCodeTool(sandboxes), AgentSession(), code="1")

    text = text_of(contents)
    assert "\nCould not reach the sandbox group: TLS error" in text, text
    assert "CERTIFICATE_VERIFY_FAILED" in text
    assert "SSL_CERT_FILE" in text
    assert "session pool" not in text


async def test_a_wrong_key_is_the_sandbox_group_refusing_not_a_session_pool(
    server: LocalSessionsServer,
) -> None:
    async with Sandboxes(_config(server), credential="not-the-key") as sandboxes:
        contents = await call(ExecuteCodeTool(sandboxes), AgentSession(), code="1")

    text = text_of(contents)
    assert "\nThe sandbox group refused the call: " in text, text
    assert "pool" not in text
    assert [c.error_code for c in contents if c.type == "error"] == ["AuthenticationError"]
