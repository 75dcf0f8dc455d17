"""``Microsoft.App/sandboxGroups`` over plain HTTP, as curl and ARMPolling drive it: PUT, the
operation-status URL it hands out (with the sandbox groups' api-version), a sandbox made on the
data plane, DELETE with its ``Location`` polled to 204, then the data plane's 404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from tests.sandboxes._wire_helpers import ARM_API, Raw

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw() -> AsyncIterator[Raw]:
    async with LocalSessionsServer() as server, aiohttp.ClientSession() as http:
        yield Raw(server, http)


async def test_group_made_over_arm_serves_sandboxes_and_its_delete_removes_them(raw: Raw) -> None:
    put = await raw.call("PUT", raw.arm_url("armgroup"), body={"location": "local"})
    assert put.status == 201
    assert put.json()["properties"]["provisioningState"] == "Succeeded"
    status_url = put.headers["Azure-AsyncOperation"]
    assert f"api-version={ARM_API}" in status_url
    status = await raw.call("GET", status_url)
    assert (status.status, status.json()["status"]) == (200, "Succeeded")

    listed = await raw.call("GET", raw.arm_url())
    assert [g["name"] for g in listed.json()["value"]] == ["armgroup"]

    made = await raw.call(
        "PUT",
        raw.group_url("armgroup", "sandboxes"),
        body={"sourcesRef": {"diskImage": {"name": "python-3.12", "isPublic": True}}},
    )
    assert made.status in (200, 201)
    sandbox = made.json()
    assert sandbox["state"] == "Running"
    ran = await raw.call(
        "POST",
        raw.group_url("armgroup", f"sandboxes/{sandbox['id']}/executeShellCommand"),
        body={"command": "echo hi"},
    )
    assert ran.json()["stdout"] == "hi\n"

    deleted = await raw.call("DELETE", raw.arm_url("armgroup"))
    assert deleted.status == 202
    result = await raw.call("GET", deleted.headers["Location"])
    while result.status == 202:  # the group's sandboxes are being deleted
        await asyncio.sleep(0.05)
        result = await raw.call("GET", deleted.headers["Location"])
    assert result.status == 204
    gone = await raw.call("GET", raw.group_url("armgroup", f"sandboxes/{sandbox['id']}"))
    assert gone.status == 404
    assert gone.json()["error"]["code"] == "SandboxGroupNotFound"
    assert (await raw.call("GET", raw.arm_url("armgroup"))).status == 404


async def test_operation_url_refuses_an_api_version_no_resource_type_serves(raw: Raw) -> None:
    put = await raw.call("PUT", raw.arm_url("versioned"), body={"location": "local"})
    status_url = put.headers["Azure-AsyncOperation"].replace(ARM_API, "1999-01-01")
    refused = await raw.call("GET", status_url)
    assert refused.status == 400
    assert refused.json()["error"]["code"] == "NoRegisteredProviderFound"
