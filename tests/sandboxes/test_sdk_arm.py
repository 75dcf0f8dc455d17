"""ARM ``Microsoft.App/sandboxGroups`` through the official SDK's management client, whose ARM
host is fixed: a transport sends its requests to the local server instead (ARMPolling follows
the server's own operation URLs). Deleting a group deletes its sandboxes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from azure.containerapps.sandbox import SandboxGroupManagementClient
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from autogen_aca_sessions.local import LocalSessionsServer
from tests.sandboxes._wire_helpers import RG, SUB, group_client

pytestmark = pytest.mark.asyncio(loop_scope="module")

ARM_HOST = "https://management.azure.com"


class LocalArmTransport(RequestsTransport):
    """Sends what the SDK addresses to ``management.azure.com`` to the local server."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base = base_url

    def send(self, request: HttpRequest, **kwargs: Any) -> Any:  # type: ignore[override]
        if request.url.startswith(ARM_HOST):
            request.url = self._base + request.url[len(ARM_HOST) :]
        return super().send(request, **kwargs)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(tls=True, retry_after_seconds=1) as srv:
        yield srv


async def test_the_management_client_creates_patches_lists_and_deletes_a_group_with_its_sandboxes(
    server: LocalSessionsServer,
) -> None:
    def flow() -> dict[str, Any]:
        transport = LocalArmTransport(server.base_url, connection_verify=str(server.tls_ca_file))
        mgmt = SandboxGroupManagementClient(
            server.credential, subscription_id=SUB, resource_group=RG, transport=transport
        )
        out: dict[str, Any] = {}
        out["created"] = mgmt.begin_create_group(
            "arm-group",
            "eastus2",
            tags={"env": "test"},
            properties={"maxSandboxCount": 3},
            polling_interval=0,
        ).result()
        out["got"] = mgmt.get_group("arm-group")
        out["listed"] = [g.name for g in mgmt.list_groups()]
        out["patched"] = mgmt.begin_patch_group_identity(
            "arm-group", {"type": "SystemAssigned"}, polling_interval=0
        ).result()
        sandbox = group_client(server, "arm-group").begin_create_sandbox().result()
        sandbox.write_file("/root/x", "1")
        mgmt.begin_delete_group("arm-group", polling_interval=0).result()
        try:
            mgmt.get_group("arm-group")
        except ResourceNotFoundError:
            out["group_gone"] = True
        try:
            sandbox.get()
        except ResourceNotFoundError as exc:
            out["sandbox_gone"] = exc.error.code if exc.error else None
        out["listed_after"] = [g.name for g in mgmt.list_groups()]
        return out

    out = await asyncio.to_thread(flow)
    created = out["created"]
    assert created.name == "arm-group"
    assert created.location == "eastus2"
    assert created.properties["provisioningState"] == "Succeeded"
    assert created.properties["maxSandboxCount"] == 3
    assert (
        created.id
        == f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/sandboxGroups/arm-group"
    )
    assert out["got"].tags == {"env": "test"}
    assert out["listed"] == ["arm-group"]
    assert out["patched"].identity["type"] == "SystemAssigned"
    assert out["patched"].identity["principalId"]
    assert out["group_gone"] is True
    assert out["sandbox_gone"] == "SandboxGroupNotFound"
    assert out["listed_after"] == []
    assert (await server.sandbox_groups()).runtime.list_groups() == []
