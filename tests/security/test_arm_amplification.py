"""Management-plane bodies cannot pin memory: what a pool stores is checked and capped, and a
deleted pool gives its memory back (issue 22 items 2, 3 and 13), measured on a server in its own
process so that the test's own buffers stay out of the figures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local.hosting.arm.model import (
    MAX_MANAGED_IDENTITIES,
    MAX_MANAGED_IDENTITY_CHARS,
    MAX_SECRET_VALUE_CHARS,
    MAX_SECRETS,
    MAX_TAG_NAME_CHARS,
    MAX_TAG_VALUE_CHARS,
    MAX_TAGS,
)
from autogen_aca_sessions.local.hosting.arm.routes import MAX_ARM_BODY_BYTES
from tests.security._support import PoolProcess, note, start_pool_process, stop_pool_process

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "5a1c2d3e-1111-4222-8333-944455556666"
V = "2025-10-02-preview"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pool = start_pool_process(
        tmp_path_factory.mktemp("armmem"), management_plane=True, ready_sessions=0, pool_type="Shell"
    )
    try:
        yield pool
    finally:
        stop_pool_process(pool)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(server: PoolProcess) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


def _url(server: PoolProcess, name: str) -> str:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(server.endpoint))
    pools = f"{origin}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/sessionPools"
    return f"{pools}/{name}?api-version={V}"


def _rss(server: PoolProcess) -> int:
    return int(server.server().memory_info().rss)


async def _put(
    http: aiohttp.ClientSession, url: str, body: bytes
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with http.put(url, data=body) as resp:
        return resp.status, json.loads(await resp.read()), dict(resp.headers)


async def _create(http: aiohttp.ClientSession, url: str, body: bytes) -> dict[str, Any]:
    """PUT a pool and wait until its operation ended; returns the PUT's body and headers."""
    status, answer, headers = await _put(http, url, body)
    assert status == 201, answer
    while True:
        async with http.get(headers["Azure-AsyncOperation"]) as resp:
            progress = json.loads(await resp.read())
        if progress["status"] != "InProgress":
            assert progress["status"] == "Succeeded", progress
            return {"body": answer, "headers": headers}
        await asyncio.sleep(0.05)


async def _delete(http: aiohttp.ClientSession, url: str) -> None:
    async with http.delete(url) as resp:
        assert resp.status in (202, 204), await resp.text()
        location = resp.headers.get("Location")
    while location is not None:
        async with http.get(location) as result:
            if result.status != 202:
                assert result.status == 204
                return
        await asyncio.sleep(0.05)


def _empty_objects_body() -> bytes:
    head = b'{"location":"westus","properties":{"containerType":"Shell","managedIdentitySettings":['
    tail = b"]}}"
    count = (MAX_ARM_BODY_BYTES - len(head) - len(tail) - 16) // 3
    body = head + b",".join([b"{}"] * count) + tail
    assert len(body) <= MAX_ARM_BODY_BYTES
    return body


def _largest_valid_body() -> bytes:
    identity = (
        "/subscriptions/"
        + SUB
        + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
    )
    return json.dumps(
        {
            "location": "westus",
            "tags": {
                f"{i:03d}".ljust(MAX_TAG_NAME_CHARS, "t"): "v" * MAX_TAG_VALUE_CHARS for i in range(MAX_TAGS)
            },
            "properties": {
                "containerType": "Shell",
                "scaleConfiguration": {"maxConcurrentSessions": 5, "readySessionInstances": 0},
                "managedIdentitySettings": [
                    {
                        "identity": (identity + str(i)).ljust(MAX_MANAGED_IDENTITY_CHARS, "x"),
                        "lifecycle": "Main",
                    }
                    for i in range(MAX_MANAGED_IDENTITIES)
                ],
                "secrets": [
                    {"name": f"s{i}", "value": "k" * MAX_SECRET_VALUE_CHARS} for i in range(MAX_SECRETS)
                ],
            },
        }
    ).encode()


async def test_bodies_of_empty_identity_entries_are_400_and_memory_returns_after_capped_pools_are_deleted(
    server: PoolProcess, http: aiohttp.ClientSession
) -> None:
    # Warm up: one pool made and deleted, so imports and caches are in the baseline.
    await _create(http, _url(server, "warmup"), _largest_valid_body())  # warm-up
    await _delete(http, _url(server, "warmup"))
    baseline = _rss(server)
    bomb = _empty_objects_body()
    for index in range(3):
        status, body, _ = await _put(http, _url(server, f"bomb{index}"), bomb)
        assert status == 400, body
        assert "managedIdentitySettings" in json.dumps(body)
        assert len(json.dumps(body)) < 4096  # one error, not one per entry
    after_bombs = _rss(server)
    valid = _largest_valid_body()
    names = [f"capped{index}" for index in range(3)]
    for name in names:
        body = (await _create(http, _url(server, name), valid))["body"]
        # Secret values are kept but never shown.
        assert "k" * 64 not in json.dumps(body)
        assert [s["name"] for s in body["properties"]["secrets"]][:2] == ["s0", "s1"]
    holding = _rss(server)
    for name in names:
        await _delete(http, _url(server, name))
    released = _rss(server)
    note("ARM RSS baseline MiB", round(baseline / MIB, 1))
    note("ARM RSS after three 4 MB bombs MiB", round(after_bombs / MIB, 1))
    note("ARM RSS holding three capped pools MiB", round(holding / MIB, 1))
    note("ARM RSS after deleting them MiB", round(released / MIB, 1))
    # Before the caps the three bombs were accepted and kept ~330 MiB for good; what a pool may
    # store is now far below a MiB, so neither the refused bodies nor the deleted pools leave
    # memory behind.
    assert after_bombs - baseline < 64 * MIB, (baseline, after_bombs)
    assert released - baseline < 32 * MIB, (baseline, holding, released)


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"managedIdentitySettings": [{}]}, "properties.managedIdentitySettings[0].identity"),
        ({"managedIdentitySettings": [{"identity": 5}]}, "properties.managedIdentitySettings[0].identity"),
        ({"managedIdentitySettings": [{"identity": "system", "lifecycle": "Later"}]}, None),
        ({"managedIdentitySettings": [{"identity": "system"}] * (MAX_MANAGED_IDENTITIES + 1)}, None),
        ({"secrets": [{"name": "a", "value": 5}]}, "properties.secrets[0]"),
        ({"secrets": [{"name": "a", "value": "v" * (MAX_SECRET_VALUE_CHARS + 1)}]}, "properties.secrets[0]"),
    ],
)
async def test_identity_and_secret_entries_are_checked_one_by_one(
    server: PoolProcess, http: aiohttp.ClientSession, properties: dict[str, Any], target: str | None
) -> None:
    body = json.dumps({"location": "westus", "properties": {"containerType": "Shell", **properties}}).encode()
    status, answer, _ = await _put(http, _url(server, "checked"), body)
    assert status == 400, answer
    assert answer["error"]["code"] == "InvalidRequestContent"
    if target is not None:
        assert answer["error"]["target"] == target


@pytest.mark.parametrize("location", ["東京 ①", "east-us", "", "a" * 65, "1west", "west\u00a0us"])
async def test_a_location_the_server_does_not_serve_is_400_and_never_reaches_a_header(
    server: PoolProcess, http: aiohttp.ClientSession, location: str
) -> None:
    body = json.dumps({"location": location, "properties": {"containerType": "Shell"}}).encode()
    status, answer, headers = await _put(http, _url(server, "placed"), body)
    assert status == 400, answer
    assert answer["error"]["code"] in ("LocationNotAvailableForResourceType", "LocationRequired")
    assert all(value.isascii() for value in headers.values())


async def test_a_served_location_names_its_operation_urls_in_ascii(
    server: PoolProcess, http: aiohttp.ClientSession
) -> None:
    body = json.dumps({"location": "East US 2", "properties": {"containerType": "Shell"}}).encode()
    headers = (await _create(http, _url(server, "eastpool"), body))["headers"]
    assert "/locations/eastus2/operationStatuses/" in headers["Azure-AsyncOperation"]
    assert all(value.isascii() for value in headers.values())
    await _delete(http, _url(server, "eastpool"))


async def test_a_non_ascii_client_request_id_is_not_echoed(
    server: PoolProcess, http: aiohttp.ClientSession
) -> None:
    listing = _url(server, "x").replace("/sessionPools/x?", "/sessionPools?")
    async with http.get(listing, headers={"x-ms-client-request-id": "é-1"}) as resp:
        assert resp.status == 200
        assert "x-ms-client-request-id" not in resp.headers
    async with http.get(listing, headers={"x-ms-client-request-id": "abc-1"}) as resp:
        assert resp.headers["x-ms-client-request-id"] == "abc-1"
