"""Every verb on every management api-version, against a real server, as curl sends them."""

from __future__ import annotations

from typing import Any

import pytest

from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.hosting.arm import ARM_API_VERSIONS
from tests.arm._helpers import OTHER_SUB, SUB, Arm

pytestmark = pytest.mark.asyncio(loop_scope="module")

VERSIONS = list(ARM_API_VERSIONS)


def _body_for(version: str) -> dict[str, Any]:
    """A Shell pool (no kernels to start) described in the shape of ``version``."""
    shape = ARM_API_VERSIONS[version].shape.value
    if shape == "2023-08":
        props: dict[str, Any] = {
            "poolManagementType": "Dynamic",
            "containerType": "Shell",
            "maxConcurrentSessions": 4,
            "dynamicPoolConfiguration": {"executionType": "Timed", "coolDownPeriodInSecond": 320},
        }
    elif shape == "2024":
        props = {
            "poolManagementType": "Dynamic",
            "containerType": "Shell",
            "scaleConfiguration": {"maxConcurrentSessions": 4, "readySessionInstances": 0},
            "dynamicPoolConfiguration": {"executionType": "Timed", "cooldownPeriodInSeconds": 320},
            "sessionNetworkConfiguration": {"status": "EgressDisabled"},
        }
    else:
        props = {
            "poolManagementType": "Dynamic",
            "containerType": "Shell",
            "scaleConfiguration": {"maxConcurrentSessions": 4, "readySessionInstances": 0},
            "dynamicPoolConfiguration": {
                "lifecycleConfiguration": {"lifecycleType": "Timed", "cooldownPeriodInSeconds": 320}
            },
            "sessionNetworkConfiguration": {"status": "EgressDisabled"},
        }
    return {"location": "West Europe", "tags": {"team": "a"}, "properties": props}


def _assert_shape(body: dict[str, Any], version: str, *, max_sessions: int) -> None:
    spec = ARM_API_VERSIONS[version]
    props = body["properties"]
    assert body["type"] == "Microsoft.App/sessionPools"
    assert body["location"] == "West Europe"
    assert body["tags"] == {"team": "a"}
    dynamic = props["dynamicPoolConfiguration"]
    if spec.shape.value == "2023-08":
        assert props["maxConcurrentSessions"] == max_sessions
        assert "scaleConfiguration" not in props
        assert dynamic == {"poolType": "Shell", "executionType": "Timed", "coolDownPeriodInSecond": 320}
    elif spec.shape.value == "2024":
        assert props["scaleConfiguration"] == {
            "maxConcurrentSessions": max_sessions,
            "readySessionInstances": 0,
        }
        assert dynamic == {"executionType": "Timed", "cooldownPeriodInSeconds": 320}
        assert props["containerType"] == "Shell"
    else:
        assert props["scaleConfiguration"] == {
            "maxConcurrentSessions": max_sessions,
            "readySessionInstances": 0,
        }
        assert dynamic == {
            "lifecycleConfiguration": {"lifecycleType": "Timed", "cooldownPeriodInSeconds": 320}
        }
        assert props["containerType"] == "Shell"
    assert ("mcpServerSettings" in props) is spec.mcp


@pytest.mark.parametrize("version", VERSIONS)
async def test_put_get_list_patch_delete_in_each_api_version(arm: Arm, version: str) -> None:
    name = "v" + version.replace("-", "")
    put = await arm.call("PUT", arm.pool_url(name, version=version), body=_body_for(version))
    assert put.status == 201, put.body
    assert put.json()["properties"]["provisioningState"] == "InProgress"
    assert put.headers["Retry-After"] == "1"
    status = await arm.wait_async_operation(put.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded"
    got = await arm.call("GET", arm.pool_url(name, version=version))
    assert got.status == 200
    body = got.json()
    assert (
        body["id"] == f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.App/sessionPools/{name}"
    )
    assert body["properties"]["provisioningState"] == "Succeeded"
    assert body["properties"]["poolManagementEndpoint"].endswith(
        f"/subscriptions/{SUB}/resourceGroups/rg1/sessionPools/{name}"
    )
    _assert_shape(body, version, max_sessions=4)

    listed = await arm.call("GET", arm.rg_url(version=version))
    names: list[str] = []
    page = listed
    while True:
        assert page.status == 200
        data = page.json()
        assert set(data) == {"value", "nextLink"}
        names += [p["name"] for p in data["value"]]
        if data["nextLink"] is None:
            break
        page = await arm.call("GET", data["nextLink"])
    assert name in names

    patch = await arm.call(
        "PATCH",
        arm.pool_url(name, version=version),
        body={"properties": {"scaleConfiguration": {"maxConcurrentSessions": 7}}},
    )
    assert patch.status == 202, patch.body
    assert "Location" in patch.headers
    assert "Azure-AsyncOperation" in patch.headers
    status = await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded"
    _assert_shape(
        (await arm.call("GET", arm.pool_url(name, version=version))).json(), version, max_sessions=7
    )

    delete = await arm.call("DELETE", arm.pool_url(name, version=version))
    assert delete.status == 202
    assert (
        f"/subscriptions/{SUB}/providers/Microsoft.App/locations/westeurope/operationResults/"
        in (delete.headers["Location"])
    )
    # A second DELETE while the first runs answers with the same operation (idempotent).
    again = await arm.call("DELETE", arm.pool_url(name, version=version))
    assert again.status in (202, 204)
    await arm.delete(name, version=version)
    gone = await arm.call("GET", arm.pool_url(name, version=version))
    assert gone.status == 404
    assert gone.error["code"] == "ResourceNotFound"


async def test_put_on_an_existing_pool_replaces_it_with_200(arm: Arm) -> None:
    await arm.create("replaced")
    again = await arm.call(
        "PUT",
        arm.pool_url("replaced"),
        body={
            "location": "westus",
            "properties": {
                "containerType": "Shell",
                "scaleConfiguration": {"maxConcurrentSessions": 9, "readySessionInstances": 0},
            },
        },
    )
    assert again.status == 200, again.body
    await arm.wait_async_operation(again.headers["Azure-AsyncOperation"])
    body = (await arm.call("GET", arm.pool_url("replaced"))).json()
    assert body["properties"]["scaleConfiguration"]["maxConcurrentSessions"] == 9
    await arm.delete("replaced")


async def test_list_by_subscription_pages_with_next_link_and_keeps_subscriptions_apart(arm: Arm) -> None:
    for name, rg in (("lista", "rga"), ("listb", "rgb"), ("listc", "rgb")):
        await arm.create(name, rg=rg)
    await arm.create("elsewhere", sub=OTHER_SUB)
    names: list[str] = []
    pages = 0
    url: str | None = arm.sub_url()
    while url is not None:
        reply = await arm.call("GET", url)
        assert reply.status == 200
        data = reply.json()
        assert len(data["value"]) <= 2  # the test server's page size
        names += [p["name"] for p in data["value"]]
        url = data["nextLink"]
        pages += 1
    assert {"lista", "listb", "listc"} <= set(names)
    assert "elsewhere" not in names
    assert pages >= 2
    by_rg = (await arm.call("GET", arm.rg_url(rg="rgb"))).json()
    assert [p["name"] for p in by_rg["value"]] == ["listb", "listc"]
    assert by_rg["nextLink"] is None
    other = (await arm.call("GET", arm.sub_url(sub=OTHER_SUB))).json()
    assert [p["name"] for p in other["value"]] == ["elsewhere"]
    for name, rg in (("lista", "rga"), ("listb", "rgb"), ("listc", "rgb")):
        await arm.delete(name, rg=rg)
    await arm.delete("elsewhere", sub=OTHER_SUB)


async def test_delete_of_a_missing_pool_is_204_and_get_is_404(arm: Arm) -> None:
    reply = await arm.call("DELETE", arm.pool_url("neverthere"))
    assert reply.status == 204
    got = await arm.call("GET", arm.pool_url("neverthere"))
    assert got.status == 404
    assert got.error["code"] == "ResourceNotFound"


async def test_names_resource_groups_and_fixed_segments_are_case_insensitive(arm: Arm) -> None:
    await arm.create("casepool", rg="MyGroup")
    url = arm.pool_url("casepool", rg="mygroup").replace(
        "/providers/Microsoft.App/sessionPools/", "/PROVIDERS/microsoft.app/SESSIONPOOLS/"
    )
    got = await arm.call("GET", url)
    assert got.status == 200, got.body
    await arm.delete("casepool", rg="MYGROUP")


async def test_mcp_credentials_fetch_and_rotate_with_every_documented_spelling(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    body = await arm.create("mcppool", {"mcPServerSettings": {"isMCpServerEnabled": True}})
    mcp = body["properties"]["mcpServerSettings"]
    assert mcp["isMcpServerEnabled"] is True
    assert mcp["mcpServerEndpoint"] == body["properties"]["poolManagementEndpoint"] + "/mcp"
    base = arm.pool_url("mcppool", version=None)
    fetched = await arm.call("POST", f"{base}/fetchMcpServerCredentials?api-version=2025-10-02-preview")
    assert fetched.status == 200
    key = fetched.json()["apiKey"]
    pool = arm_server.get_pool("mcppool", resource_group="rg1", subscription=SUB)
    assert pool is not None
    assert key == pool.mcp_api_key
    same = await arm.call("POST", f"{base}/fetchMCPServerCredentials?api-version=2025-02-02-preview")
    assert same.json() == {"apiKey": key}
    seen = {key}
    for action in ("rotateMcpServerCredentials", "ROTATEMCPSERVERCREDENTIALS", "regenerateCredentials"):
        rotated = await arm.call("POST", f"{base}/{action}?api-version=2025-10-02-preview")
        assert rotated.status == 200, rotated.body
        new_key = rotated.json()["apiKey"]
        assert new_key not in seen
        seen.add(new_key)
        assert (
            await arm.call("POST", f"{base}/fetchMcpServerCredentials?api-version=2025-10-02-preview")
        ).json() == {"apiKey": new_key}
    not_mcp = await arm.call("POST", f"{base}/fetchMcpServerCredentials?api-version=2026-01-01")
    assert not_mcp.status == 400
    assert not_mcp.error["code"] == "UnsupportedApiVersionForAction"
    await arm.delete("mcppool")


async def test_mcp_credentials_of_a_pool_without_mcp_are_refused(arm: Arm) -> None:
    body = await arm.create("nomcp")
    assert body["properties"]["mcpServerSettings"] == {
        "isMcpServerEnabled": False,
        "isMcpServerApiKeyDisabled": False,
    }
    reply = await arm.call(
        "POST",
        arm.pool_url("nomcp", version=None) + "/fetchMcpServerCredentials?api-version=2025-10-02-preview",
    )
    assert reply.status == 400
    assert reply.error["code"] == "SessionMCPServerNotEnabled"
    missing = await arm.call(
        "POST",
        arm.pool_url("nopool", version=None) + "/rotateMcpServerCredentials?api-version=2025-10-02-preview",
    )
    assert missing.status == 404
    await arm.delete("nomcp")


async def test_patch_can_turn_mcp_on_with_the_tutorial_spelling(arm: Arm) -> None:
    await arm.create("mcplater")
    patch = await arm.call(
        "PATCH",
        arm.pool_url("mcplater"),
        body={"properties": {"mcpServerSettings": {"isMCPServerEnabled": True}}},
    )
    assert patch.status == 202
    await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
    body = (await arm.call("GET", arm.pool_url("mcplater", version="2025-02-02-preview"))).json()
    assert body["properties"]["mcpServerSettings"]["isMcpServerEnabled"] is True
    await arm.delete("mcplater")


async def test_2026_07_01_is_served_with_the_2026_01_01_shape(arm: Arm) -> None:
    await arm.create("newest", version="2026-07-01")
    a = (await arm.call("GET", arm.pool_url("newest", version="2026-07-01"))).json()
    b = (await arm.call("GET", arm.pool_url("newest", version="2026-01-01"))).json()
    assert a == b
    assert "mcpServerSettings" not in a["properties"]
    await arm.delete("newest")


async def test_the_client_request_id_comes_back_with_a_request_id(arm: Arm) -> None:
    reply = await arm.call("GET", arm.rg_url(), headers={"x-ms-client-request-id": "abc-123"})
    assert reply.headers["x-ms-client-request-id"] == "abc-123"
    assert reply.headers["x-ms-request-id"]


async def test_the_python_api_creates_lists_and_deletes_pools(arm_server: LocalSessionsServer) -> None:
    pool = await arm_server.create_pool("tenanta", container_type="Shell", ready_session_instances=0)
    local = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    assert pool.endpoint == f"{arm_server.base_url}{local}/sessionPools/tenanta"
    assert arm_server.get_pool("TENANTA") is pool
    assert pool in arm_server.list_pools(resource_group="local")
    with pytest.raises(ValueError, match="PythonLTS and Shell"):
        await arm_server.create_pool("tenantb", container_type="NodeLTS")
    with pytest.raises(ValueError, match="name"):
        await arm_server.create_pool("x")
    assert await arm_server.delete_pool("tenanta")
    assert arm_server.get_pool("tenanta") is None
    assert not await arm_server.delete_pool("tenanta")


async def test_the_server_root_is_no_pool_endpoint_and_its_404_names_the_pool_endpoints(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    pool = await arm_server.create_pool("rootless", container_type="Shell", default=True)
    try:
        url = f"{arm.base}/executions?api-version=2025-10-02-preview&identifier=at-root"
        reply = await arm.call("POST", url, body={"shellCommand": "echo root"})
        assert reply.status == 404, reply.body
        assert reply.error["code"] == "SessionPoolNotFound"
        assert pool.endpoint in reply.error["message"]
        assert "server root" in reply.error["message"]
        unauthenticated = await arm.call("POST", url, body={}, headers={"Authorization": "Bearer wrong"})
        assert unauthenticated.status == 401
    finally:
        assert await arm_server.delete_pool("rootless")


async def test_with_serve_at_root_the_default_pool_also_answers_at_the_server_root(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    pool = await arm_server.create_pool("rootpool", container_type="Shell", default=True)
    assert arm_server.default_pool is pool
    arm_server.serve_at_root = True
    try:
        url = f"{arm.base}/executions?api-version=2025-10-02-preview&identifier=at-root"
        reply = await arm.call("POST", url, body={"shellCommand": "echo root"})
        assert reply.status == 200, reply.body
        assert reply.json()["result"]["stdout"] == "root\n"
        assert await arm_server.delete_pool("rootpool")
        assert arm_server.default_pool is None
        gone = await arm.call("POST", url, body={"shellCommand": "echo root"})
        assert gone.status == 404
        assert gone.error["code"] == "SessionPoolNotFound"
    finally:
        arm_server.serve_at_root = False
