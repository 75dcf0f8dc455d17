"""A file write past the server's per-write cap is refused as such (413 ``RequestBodyTooLarge``
naming the cap), not reported as the sandbox's disk quota, whether the body declares its length
or comes chunked; nothing of it is left on the sandbox's disk.

A real ``LocalSessionsServer`` on 127.0.0.1 with a real bubblewrap sandbox whose disk quota
(5 GiB by default) is far above the cap, so only the cap can refuse these writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.frontends.sandboxes.handlers import MAX_FILE_BYTES

from ._wire_helpers import RG, SUB, Raw, Reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

GROUP = "capped"
CHUNK = b"\0" * (1 << 20)
CAP_MESSAGE = f"Files are limited to {MAX_FILE_BYTES} bytes ({MAX_FILE_BYTES // 2**20} MiB) per write."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw() -> AsyncIterator[Raw]:
    async with LocalSessionsServer() as server, aiohttp.ClientSession() as http:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield Raw(server, http)


async def _sandbox(raw: Raw) -> str:
    made = await raw.call("PUT", raw.group_url(GROUP, "sandboxes"), body={})
    assert made.status == 201, made.body[:300]
    sandbox_id = made.json()["id"]
    assert isinstance(sandbox_id, str)
    return sandbox_id


async def _past_the_cap() -> AsyncIterator[bytes]:
    sent = 0
    while sent <= MAX_FILE_BYTES:
        yield CHUNK
        sent += len(CHUNK)


async def _write(raw: Raw, sandbox_id: str, path: str, *, declared_length: int | None) -> Reply:
    url = raw.group_url(GROUP, f"sandboxes/{sandbox_id}/files?path={path}")
    headers = {"Authorization": f"Bearer {raw.server.api_key}", "Content-Type": "application/octet-stream"}
    if declared_length is not None:
        headers["Content-Length"] = str(declared_length)
    async with raw.http.put(url, data=_past_the_cap(), headers=headers) as resp:
        return Reply(resp.status, resp.headers.copy(), await resp.read())


async def _data_entries(raw: Raw, sandbox_id: str) -> list[str]:
    listed = await raw.call("GET", raw.group_url(GROUP, f"sandboxes/{sandbox_id}/files/list?path=/mnt/data"))
    assert listed.status == 200, listed.body[:300]
    return [entry["name"] for entry in listed.json()["entries"]]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_write_past_the_per_write_cap_is_413_request_body_too_large_not_the_disk_quota(
    raw: Raw, declared: bool
) -> None:
    sandbox_id = await _sandbox(raw)
    length = MAX_FILE_BYTES + len(CHUNK) if declared else None
    refused = await _write(raw, sandbox_id, "/mnt/data/big.bin", declared_length=length)

    assert refused.status == 413, refused.body[:300]
    error = refused.json()["error"]
    assert error == {"code": "RequestBodyTooLarge", "message": CAP_MESSAGE, "target": "body", "details": []}
    assert await _data_entries(raw, sandbox_id) == []
    # The sandbox's disk took none of it: a normal write still fits.
    fits = await raw.call(
        "PUT",
        raw.group_url(GROUP, f"sandboxes/{sandbox_id}/files?path=/mnt/data/small.txt"),
        raw=b"fits",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert fits.status == 201, fits.body[:300]
    assert await _data_entries(raw, sandbox_id) == ["small.txt"]
