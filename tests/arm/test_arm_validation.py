"""Every refusal of the management plane: ARM's error body, a 4xx, and nothing half-made."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from autogen_aca_sessions.local import LocalSessionsServer
from tests.arm._helpers import SUB, Arm

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _pool(**properties: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"containerType": "Shell", "scaleConfiguration": {"readySessionInstances": 0}}
    props.update(properties)
    return {"location": "westus", "properties": props}


async def _refused(
    arm: Arm,
    arm_server: LocalSessionsServer,
    name: str,
    body: Any,
    *,
    status: int = 400,
    raw: bytes | None = None,
) -> dict[str, Any]:
    reply = await arm.call("PUT", arm.pool_url(name), body=body, raw=raw)
    assert reply.status == status, reply.body
    assert reply.headers["x-ms-error-code"] == reply.error["code"]
    # Nothing was made: no pool, no directory.
    assert (await arm.call("GET", arm.pool_url(name))).status in (400, 404)
    pools_dir = arm_server.root_dir / "pools"
    assert not pools_dir.exists() or not any(p.name.startswith(f"{name}-") for p in pools_dir.iterdir())
    return reply.error


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 64, "MyPool", "my_pool", "1pool", "my--pool", "pool-", "-pool", "pool.x", "p%C3%A9ol"],
)
async def test_bad_pool_names_are_refused(arm: Arm, arm_server: LocalSessionsServer, name: str) -> None:
    err = await _refused(arm, arm_server, name, _pool())
    assert err["code"] == "InvalidSessionPoolName"
    assert err["target"] == "sessionPoolName"


@pytest.mark.parametrize("name", ["abc", "a" * 63, "pool9", "my-session-pool"])
async def test_names_of_the_spec_and_the_cli_hyphenated_names_are_accepted(arm: Arm, name: str) -> None:
    await arm.create(name)
    await arm.delete(name)


async def test_a_subscription_that_is_not_a_guid_is_refused(arm: Arm) -> None:
    reply = await arm.call("GET", arm.rg_url(sub="not-a-guid"))
    assert reply.status == 400
    assert reply.error["code"] == "InvalidSubscriptionId"


@pytest.mark.parametrize("rg", ["ends.", "r" * 91, "bad%2Fslash", "a*b"])
async def test_bad_resource_group_names_are_refused(arm: Arm, rg: str) -> None:
    reply = await arm.call("GET", arm.pool_url("abc", rg=rg))
    assert reply.status == 400, reply.body
    assert reply.error["code"] == "InvalidResourceGroupName"


async def test_a_missing_api_version_is_refused(arm: Arm) -> None:
    reply = await arm.call("GET", arm.pool_url("abc", version=None))
    assert reply.status == 400
    assert reply.error["code"] == "MissingApiVersionParameter"
    assert reply.error["target"] == "api-version"


@pytest.mark.parametrize("version", ["2099-01-01", "2024-02-02", "latest", "2025-10-02-PREVIEW-x"])
async def test_an_unknown_api_version_is_refused_naming_the_supported_ones(arm: Arm, version: str) -> None:
    for url in (
        arm.pool_url("abc", version=version),
        arm.rg_url(version=version),
        arm.sub_url(version=version),
    ):
        reply = await arm.call("GET", url)
        assert reply.status == 400
        assert reply.error["code"] == "NoRegisteredProviderFound"
        assert "2025-10-02-preview" in reply.error["message"]


@pytest.mark.parametrize("container", ["CustomContainer", "NodeLTS", "GpuBase", "CsharpLTS", "nodelts"])
async def test_container_types_the_local_server_cannot_run_get_a_clear_400(
    arm: Arm, arm_server: LocalSessionsServer, container: str
) -> None:
    err = await _refused(arm, arm_server, "custom", _pool(containerType=container))
    assert err["code"] == "ContainerTypeNotSupported"
    assert "PythonLTS" in err["message"]
    assert "Shell" in err["message"]
    assert err["target"] == "properties.containerType"


@pytest.mark.parametrize(
    ("properties", "code", "target"),
    [
        ({"containerType": "Cobol"}, "InvalidContainerType", "properties.containerType"),
        ({"dynamicPoolConfiguration": {"poolType": "FunctionsPython"}}, "ContainerTypeNotSupported", None),
        ({"poolManagementType": "Manual"}, "PoolManagementTypeNotSupported", "properties.poolManagementType"),
        ({"poolManagementType": "Sometimes"}, "InvalidPoolManagementType", "properties.poolManagementType"),
        (
            {"dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 299}}},
            "InvalidCooldownPeriod",
            None,
        ),
        (
            {"dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 3601}}},
            "InvalidCooldownPeriod",
            None,
        ),
        (
            {"dynamicPoolConfiguration": {"lifecycleConfiguration": {"coolDownPeriodInSeconds": 10}}},
            "InvalidCooldownPeriod",
            None,
        ),
        (
            {"dynamicPoolConfiguration": {"executionType": "Timed", "coolDownPeriodInSecond": 100}},
            "InvalidCooldownPeriod",
            None,
        ),
        (
            {"dynamicPoolConfiguration": {"lifecycleConfiguration": {"lifecycleType": "Forever"}}},
            "InvalidLifecycleType",
            None,
        ),
        (
            {
                "dynamicPoolConfiguration": {
                    "lifecycleConfiguration": {
                        "lifecycleType": "OnContainerExit",
                        "maxAlivePeriodInSeconds": 10,
                    }
                }
            },
            "InvalidMaxAlivePeriod",
            None,
        ),
        ({"scaleConfiguration": {"maxConcurrentSessions": 0}}, "InvalidMaxConcurrentSessions", None),
        ({"scaleConfiguration": {"maxConcurrentSessions": 601}}, "InvalidMaxConcurrentSessions", None),
        ({"maxConcurrentSessions": 1000}, "InvalidMaxConcurrentSessions", "properties.maxConcurrentSessions"),
        ({"scaleConfiguration": {"maxConcurrentSessions": "ten"}}, "InvalidRequestContent", None),
        ({"scaleConfiguration": {"maxConcurrentSessions": 2.5}}, "InvalidRequestContent", None),
        ({"scaleConfiguration": {"maxConcurrentSessions": True}}, "InvalidRequestContent", None),
        ({"scaleConfiguration": {"readySessionInstances": -1}}, "InvalidReadySessionInstances", None),
        (
            {"scaleConfiguration": {"maxConcurrentSessions": 2, "readySessionInstances": 3}},
            "InvalidReadySessionInstances",
            None,
        ),
        ({"scaleConfiguration": []}, "InvalidRequestContent", "properties.scaleConfiguration"),
        ({"sessionNetworkConfiguration": {"status": "Open"}}, "InvalidSessionNetworkConfiguration", None),
        ({"mcpServerSettings": {"isMcpServerEnabled": "yes"}}, "InvalidRequestContent", None),
        ({"secrets": [{"value": "x"}]}, "InvalidRequestContent", "properties.secrets[0]"),
        ({"secrets": "s"}, "InvalidRequestContent", "properties.secrets"),
    ],
)
async def test_out_of_range_and_malformed_properties_are_refused(
    arm: Arm, arm_server: LocalSessionsServer, properties: dict[str, Any], code: str, target: str | None
) -> None:
    err = await _refused(arm, arm_server, "badprops", _pool(**properties))
    assert err["code"] == code, err
    if target is not None:
        assert err["target"] == target
    else:
        assert err["target"].startswith("properties.")


@pytest.mark.parametrize(
    ("body", "raw", "code"),
    [
        (None, b"", "InvalidRequestContent"),
        (None, b"{not json", "InvalidRequestContent"),
        (None, b"\xff\xfe", "InvalidRequestContent"),
        ([1, 2], None, "InvalidRequestContent"),
        ("pool", None, "InvalidRequestContent"),
        ({"properties": {"containerType": "Shell"}}, None, "LocationRequired"),
        ({"location": "", "properties": {}}, None, "LocationRequired"),
        ({"location": 5}, None, "InvalidRequestContent"),
        ({"location": "x", "properties": "Shell"}, None, "InvalidRequestContent"),
        ({"location": "x", "tags": {"a": 1}}, None, "InvalidRequestContent"),
        (None, b"[" * 50_000 + b"]" * 50_000, "InvalidRequestContent"),
    ],
)
async def test_malformed_bodies_are_refused(
    arm: Arm, arm_server: LocalSessionsServer, body: Any, raw: bytes | None, code: str
) -> None:
    err = await _refused(arm, arm_server, "badbody", body, raw=raw)
    assert err["code"] == code


async def test_every_bad_value_of_a_body_is_listed_in_details(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    err = await _refused(
        arm,
        arm_server,
        "many",
        _pool(
            containerType="GpuBase",
            scaleConfiguration={"maxConcurrentSessions": 601},
            dynamicPoolConfiguration={"lifecycleConfiguration": {"cooldownPeriodInSeconds": 1}},
        ),
    )
    assert err["code"] == "InvalidRequestContent"
    assert {d["code"] for d in err["details"]} == {
        "ContainerTypeNotSupported",
        "InvalidMaxConcurrentSessions",
        "InvalidCooldownPeriod",
    }


async def test_a_body_over_4_mib_is_413(arm: Arm, arm_server: LocalSessionsServer) -> None:
    big = json.dumps({"location": "x", "tags": {"t": "a" * (5 * 1024 * 1024)}}).encode()
    err = await _refused(arm, arm_server, "big", None, raw=big, status=413)
    assert err["code"] == "RequestBodyTooLarge"


async def test_a_bad_patch_changes_nothing(arm: Arm) -> None:
    await arm.create("patchme")
    reply = await arm.call(
        "PATCH",
        arm.pool_url("patchme"),
        body={
            "properties": {
                "scaleConfiguration": {"maxConcurrentSessions": 9},
                "dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 5}},
            }
        },
    )
    assert reply.status == 400
    assert reply.error["code"] == "InvalidCooldownPeriod"
    shown = (await arm.call("GET", arm.pool_url("patchme"))).json()
    assert shown["properties"]["scaleConfiguration"]["maxConcurrentSessions"] == 5
    missing = await arm.call("PATCH", arm.pool_url("nosuchpool"), body={"properties": {}})
    assert missing.status == 404
    assert missing.error["code"] == "ResourceNotFound"
    await arm.delete("patchme")


@pytest.mark.parametrize("header", [None, "", "Bearer wrong", "Basic abc", "Bearer"])
async def test_management_calls_without_the_key_are_401(arm: Arm, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with aiohttp.ClientSession() as anonymous:
        for method, url in (
            ("GET", arm.rg_url()),
            ("PUT", arm.pool_url("abc")),
            ("DELETE", arm.pool_url("abc")),
        ):
            async with anonymous.request(method, url, headers=headers, json=_pool()) as resp:
                body = await resp.json()
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
                assert set(body["error"]) >= {"code", "message", "target", "details"}
    assert (await arm.call("GET", arm.pool_url("abc"))).status == 404  # nothing was created


async def test_a_wrong_method_is_405_with_allow(arm: Arm) -> None:
    reply = await arm.call("POST", arm.pool_url("abc"), body={})
    assert reply.status == 405
    assert reply.error["code"] == "MethodNotAllowed"
    assert reply.headers["Allow"] == "GET, PUT, PATCH, DELETE"
    listing = await arm.call("PUT", arm.rg_url(), body={})
    assert listing.status == 405


@pytest.mark.parametrize(
    "tail",
    [
        "resourceGroups/rg1/providers/Microsoft.App/containerApps/abc",
        "resourceGroups/rg1/providers/Microsoft.Web/sessionPools/abc",
        "resourceGroups/rg1/providers/Microsoft.App/sessionPools/abc/sessions/x",
        "providers/Microsoft.App/locations/westus/operationStatuses",
        "providers/Microsoft.Authorization/roleAssignments/x",
    ],
)
async def test_other_management_paths_are_404(arm: Arm, tail: str) -> None:
    reply = await arm.call("GET", f"{arm.base}/subscriptions/{SUB}/{tail}?api-version=2025-10-02-preview")
    assert reply.status == 404
    assert reply.error["code"] == "InvalidResourceType"


async def test_pools_beyond_the_servers_limit_are_refused_with_409() -> None:
    async with (
        LocalSessionsServer(max_pools=1) as server,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.api_key}"}) as http,
    ):
        arm = Arm(server.base_url, http)
        await arm.create("first")
        reply = await arm.call("PUT", arm.pool_url("second"), body=_pool())
        assert reply.status == 409
        assert reply.error["code"] == "SessionPoolQuotaExceeded"
        replaced = await arm.call("PUT", arm.pool_url("first"), body=_pool())
        assert replaced.status == 200  # replacing an existing pool is not a new one
        await arm.wait_async_operation(replaced.headers["Azure-AsyncOperation"])
        await arm.delete("first")
        await arm.create("second")


async def test_a_pool_cannot_be_moved_to_another_location_by_put(arm: Arm) -> None:
    await arm.create("staying")  # in westus
    same = await arm.call("PUT", arm.pool_url("staying"), body={**_pool(), "location": "West US"})
    assert same.status == 200  # the same region, spelled as the portal does
    await arm.wait_async_operation(same.headers["Azure-AsyncOperation"])
    moved = await arm.call("PUT", arm.pool_url("staying"), body={**_pool(), "location": "eastus"})
    assert moved.status == 409
    assert moved.error["code"] == "InvalidResourceLocation"
    assert moved.error["target"] == "location"
    await arm.delete("staying")
