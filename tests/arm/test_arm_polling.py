"""Long-running operations complete under both clients' polling algorithms.

* azure-mgmt-appcontainers (the real package) with azure-mgmt-core's ``ARMPolling``, over TLS
  (its bearer-token policy refuses plain http), trusting the server's certificate with
  ``connection_verify``.
* The az CLI's loop (``poll_status`` on ``Azure-AsyncOperation``, ``poll_results`` on
  ``Location``), written here from the reference's description of ``_clients.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.appcontainers import ContainerAppsAPIClient
from azure.mgmt.appcontainers import models as m
from azure.mgmt.core.polling.arm_polling import ARMPolling, AzureAsyncOperationPolling, LocationPolling

from autogen_aca_sessions.local import LocalSessionsServer
from tests.arm._helpers import SUB, Arm

pytestmark = pytest.mark.asyncio(loop_scope="module")

AZ_TIMEOUT = 1200  # the CLI's own limit, in seconds


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tls_server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(tls=True, retry_after_seconds=1) as server:
        yield server


def _client(server: LocalSessionsServer) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(
        server.credential, SUB, base_url=server.base_url, connection_verify=str(server.tls_ca_file)
    )


def _shell_pool(max_sessions: int = 3) -> m.SessionPool:
    return m.SessionPool(
        location="westus",
        container_type="Shell",
        pool_management_type="Dynamic",
        scale_configuration=m.ScaleConfiguration(
            max_concurrent_sessions=max_sessions, ready_session_instances=0
        ),
        dynamic_pool_configuration=m.DynamicPoolConfiguration(
            lifecycle_configuration=m.LifecycleConfiguration(
                lifecycle_type="Timed", cooldown_period_in_seconds=300
            )
        ),
        session_network_configuration=m.SessionNetworkConfiguration(status="EgressDisabled"),
    )


def _sdk_lifecycle(server: LocalSessionsServer) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with _client(server) as client:
        ops = client.container_apps_session_pools
        poller = ops.begin_create_or_update("sdkrg", "sdkpool", _shell_pool(), polling=ARMPolling(1))
        created = poller.result(timeout=60)
        seen["create_algorithm"] = type(poller.polling_method()._operation)  # type: ignore[attr-defined]
        seen["created"] = created
        seen["got"] = ops.get("sdkrg", "sdkpool")
        seen["listed"] = [p.name for p in ops.list_by_resource_group("sdkrg")]
        seen["by_sub"] = [p.name for p in ops.list_by_subscription()]
        update = m.SessionPoolUpdatableProperties(
            scale_configuration=m.ScaleConfiguration(max_concurrent_sessions=6, ready_session_instances=0)
        )
        poller = ops.begin_update("sdkrg", "sdkpool", update, polling=ARMPolling(1))
        seen["updated"] = poller.result(timeout=60)
        seen["update_algorithm"] = type(poller.polling_method()._operation)  # type: ignore[attr-defined]
        poller = ops.begin_delete("sdkrg", "sdkpool", polling=ARMPolling(1))
        seen["deleted"] = poller.result(timeout=60)
        seen["delete_algorithm"] = type(poller.polling_method()._operation)  # type: ignore[attr-defined]
        try:
            ops.get("sdkrg", "sdkpool")
        except ResourceNotFoundError as exc:
            seen["after_delete"] = exc
        seen["api_version"] = client._config.api_version  # type: ignore[attr-defined]
    return seen


async def test_azure_mgmt_appcontainers_creates_updates_lists_and_deletes_through_arm_polling(
    tls_server: LocalSessionsServer,
) -> None:
    seen = await asyncio.to_thread(_sdk_lifecycle, tls_server)
    assert seen["api_version"] == "2026-07-01"
    assert seen["create_algorithm"] is AzureAsyncOperationPolling
    created = seen["created"]
    assert created.provisioning_state == "Succeeded"
    assert created.container_type == "Shell"
    assert created.pool_management_endpoint == (
        f"{tls_server.base_url}/subscriptions/{SUB}/resourceGroups/sdkrg/sessionPools/sdkpool"
    )
    assert created.scale_configuration.max_concurrent_sessions == 3
    assert created.dynamic_pool_configuration.lifecycle_configuration.cooldown_period_in_seconds == 300
    assert seen["got"].name == "sdkpool"
    assert seen["listed"] == ["sdkpool"]
    assert "sdkpool" in seen["by_sub"]
    assert seen["update_algorithm"] is AzureAsyncOperationPolling
    assert seen["updated"].scale_configuration.max_concurrent_sessions == 6
    assert seen["delete_algorithm"] is LocationPolling
    assert seen["deleted"] is None
    assert isinstance(seen["after_delete"], ResourceNotFoundError)
    assert tls_server.get_pool("sdkpool", resource_group="sdkrg", subscription=SUB) is None


def _sdk_refusal(server: LocalSessionsServer) -> HttpResponseError:
    with _client(server) as client:
        pool = _shell_pool()
        pool.container_type = "CustomContainer"
        try:
            client.container_apps_session_pools.begin_create_or_update("sdkrg", "custom", pool).result()
        except HttpResponseError as exc:
            return exc
    raise AssertionError("CustomContainer was accepted")


async def test_the_sdk_sees_a_refused_container_type_as_an_arm_error(tls_server: LocalSessionsServer) -> None:
    exc = await asyncio.to_thread(_sdk_refusal, tls_server)
    assert exc.status_code == 400
    assert exc.error is not None
    assert exc.error.code == "ContainerTypeNotSupported"
    assert "PythonLTS" in str(exc.error.message)
    assert "Shell" in str(exc.error.message)


# --------------------------------------------------------------------------------------------
# The az CLI's polling loop


def _retry_after(headers: Any) -> float:
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) / scale
            except ValueError:
                pass
    return 2.0


async def az_poll_status(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """``poll_status``: GET the operation; while 200, sleep, re-GET and read ``status``."""
    deadline = time.monotonic() + AZ_TIMEOUT
    async with http.get(url) as resp:
        status, headers = resp.status, resp.headers
        await resp.read()
    polls = 1
    while status == 200:
        await asyncio.sleep(_retry_after(headers))
        async with http.get(url) as resp:
            status, headers, raw = resp.status, resp.headers, await resp.read()
        polls += 1
        body = json.loads(raw)
        state = body["status"].lower()
        if state in ("failed", "canceled"):
            raise AssertionError(f"operation {state}: {body.get('error')}")
        if state == "succeeded":
            body["_polls"] = polls
            return dict(body)
        assert time.monotonic() < deadline
    raise AssertionError(f"operation status answered {status}")


async def az_poll_results(http: aiohttp.ClientSession, url: str) -> Any:
    """``poll_results``: GET the Location while it answers 202; then the body, if any."""
    deadline = time.monotonic() + AZ_TIMEOUT
    while True:
        async with http.get(url) as resp:
            status, headers, raw = resp.status, resp.headers, await resp.read()
        if status != 202:
            break
        await asyncio.sleep(_retry_after(headers))
        assert time.monotonic() < deadline
    assert status < 400, raw
    return json.loads(raw) if raw else None


async def test_the_az_cli_polling_loop_completes_create_update_and_delete(arm: Arm) -> None:
    url = arm.pool_url("azpool", version="2024-02-02-preview")
    body = {
        "location": "eastus",
        "properties": {
            "poolManagementType": "Dynamic",
            "containerType": "PythonLTS",
            "scaleConfiguration": {"maxConcurrentSessions": 10, "readySessionInstances": 0},
            # The CLI always sends both keys, the unused one null.
            "dynamicPoolConfiguration": {
                "executionType": "Timed",
                "cooldownPeriodInSeconds": 300,
                "maxAlivePeriodInSeconds": None,
            },
            "sessionNetworkConfiguration": {"status": "EgressDisabled"},
        },
    }
    put = await arm.call("PUT", url, body=body)
    assert put.status == 201
    status = await az_poll_status(arm.http, put.headers["azure-asyncoperation"])
    assert status["status"] == "Succeeded"
    assert status["_polls"] >= 2
    shown = (await arm.call("GET", url)).json()
    assert shown["properties"]["provisioningState"] == "Succeeded"

    patch = await arm.call(
        "PATCH", url, body={"properties": {"scaleConfiguration": {"maxConcurrentSessions": 20}}}
    )
    assert patch.status == 202
    updated = await az_poll_results(arm.http, patch.headers["location"])
    assert updated["properties"]["scaleConfiguration"]["maxConcurrentSessions"] == 20

    delete = await arm.call("DELETE", url)
    assert delete.status == 202
    assert await az_poll_results(arm.http, delete.headers["location"]) is None
    assert (await arm.call("GET", url)).status == 404


async def test_operation_urls_of_another_subscription_are_not_found(arm: Arm) -> None:
    put = await arm.call(
        "PUT",
        arm.pool_url("opsub"),
        body={
            "location": "westus",
            "properties": {"containerType": "Shell", "scaleConfiguration": {"readySessionInstances": 0}},
        },
    )
    op_url = put.headers["Azure-AsyncOperation"]
    await arm.wait_async_operation(op_url)
    foreign = op_url.replace(SUB, "00000000-0000-0000-0000-000000000001")
    reply = await arm.call("GET", foreign)
    assert reply.status == 404
    assert reply.error["code"] == "OperationNotFound"
    unknown = await arm.call(
        "GET", op_url.rsplit("/", 1)[0] + "/not-an-operation?api-version=2025-10-02-preview"
    )
    assert unknown.status == 404
    await arm.delete("opsub")
