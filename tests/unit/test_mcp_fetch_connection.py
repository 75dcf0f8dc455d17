"""``fetch_mcp_connection``: an Azure pool's MCP endpoint and key read through ARM.

A scripted loopback ARM pins the wire: the GET of the pool, the POST of
``fetchMcpServerCredentials``, the token's scope, and every spelling the sources show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from autogen_aca_sessions.client import ValidationError
from autogen_aca_sessions.client.mcp import fetch_mcp_connection

POOL = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.App/sessionPools/pool1"
MCP_URL = "https://eastus.dynamicsessions.io/subscriptions/s1/resourceGroups/rg/sessionPools/pool1/mcp"


class FakeArm:
    def __init__(self) -> None:
        self.pool: dict[str, Any] = {}
        self.credentials: tuple[int, dict[str, Any]] = (200, {"apiKey": "the-key"})
        self.seen: list[tuple[str, str, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path_qs, request.headers.get("Authorization")))
        if request.method == "GET":
            return web.json_response(self.pool)
        status, body = self.credentials
        return web.json_response(body, status=status)


@pytest_asyncio.fixture
async def arm() -> AsyncIterator[tuple[FakeArm, str]]:
    fake = FakeArm()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "settings",
    [
        {"mcpServerSettings": {"isMcpServerEnabled": True, "mcpServerEndpoint": MCP_URL}},
        {"mcPServerSettings": {"isMCpServerEnabled": True, "mcpServerEndpoint": MCP_URL}},  # the spec example
        {"mcpServerSettings": {"isMCPServerEnabled": True, "mcpServerEndpoint": MCP_URL}},  # the tutorials
    ],
)
async def test_the_endpoint_and_key_come_from_the_pool_and_the_credentials_action(
    arm: tuple[FakeArm, str], settings: dict[str, Any]
) -> None:
    fake, url = arm
    fake.pool = {"id": POOL, "properties": settings}
    scopes: list[str] = []

    class Credential:
        """An azure-core style credential recording the scope it is asked for."""

        async def get_token(self, *requested: str, **kwargs: Any) -> str:
            scopes.extend(requested)
            return "arm-token"

    conn = await fetch_mcp_connection(POOL, Credential(), arm_endpoint=url)
    assert scopes == [url + "/.default"]
    assert (conn.url, conn.api_key) == (MCP_URL, "the-key")
    assert fake.seen == [
        ("GET", POOL + "?api-version=2025-10-02-preview", "Bearer arm-token"),
        ("POST", POOL + "/fetchMcpServerCredentials?api-version=2025-10-02-preview", "Bearer arm-token"),
    ]


async def test_a_pool_without_mcp_is_a_clear_error(arm: tuple[FakeArm, str]) -> None:
    fake, url = arm
    fake.pool = {"id": POOL, "properties": {"mcpServerSettings": None}}
    with pytest.raises(ValueError, match="isMcpServerEnabled"):
        await fetch_mcp_connection(POOL, lambda *scopes: "t", arm_endpoint=url)
    assert [method for method, _, _ in fake.seen] == ["GET"]


async def test_an_arm_refusal_keeps_its_status_and_code(arm: tuple[FakeArm, str]) -> None:
    fake, url = arm
    fake.pool = {
        "properties": {"mcpServerSettings": {"isMcpServerEnabled": True, "mcpServerEndpoint": MCP_URL}}
    }
    fake.credentials = (400, {"error": {"code": "SessionMCPServerNotEnabled", "message": "not enabled"}})
    with pytest.raises(ValidationError) as caught:
        await fetch_mcp_connection(POOL, lambda *scopes: "t", arm_endpoint=url)
    assert caught.value.error_code == "SessionMCPServerNotEnabled"
    assert caught.value.status_code == 400


def test_a_resource_id_that_is_not_a_session_pool_is_refused() -> None:
    import asyncio

    with pytest.raises(ValueError, match="session pool"):
        asyncio.run(fetch_mcp_connection("/subscriptions/s/resourceGroups/rg", lambda *scopes: "t"))
