"""Plain-HTTP helpers for the management-plane tests (no SDK: the wire as curl sees it)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

SUB = "7d0fb2a4-35c4-4d42-8e5b-0e3c1b3c2a11"
"""A subscription id of the tests (any GUID works locally)."""
OTHER_SUB = "0b9e1a52-4a0e-4f0b-9a1c-55f3c7d1e222"
LATEST = "2025-10-02-preview"
SDK_VERSION = "2026-07-01"
DATA_API = "2025-10-02-preview"


@dataclass
class Reply:
    """A response, read whole."""

    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        data = self.json()
        assert set(data) == {"error"}, data
        err: dict[str, Any] = data["error"]
        assert {"code", "message", "target", "details"} <= set(err), err
        assert isinstance(err["details"], list)
        return err


class Arm:
    """Management-plane calls to a server over real HTTP."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base = base_url
        self.http = http

    def pool_url(self, name: str, *, rg: str = "rg1", sub: str = SUB, version: str | None = LATEST) -> str:
        url = (
            f"{self.base}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sessionPools/{name}"
        )
        return url + (f"?api-version={version}" if version is not None else "")

    def rg_url(self, *, rg: str = "rg1", sub: str = SUB, version: str = LATEST) -> str:
        return (
            f"{self.base}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sessionPools"
            f"?api-version={version}"
        )

    def sub_url(self, *, sub: str = SUB, version: str = LATEST) -> str:
        return f"{self.base}/subscriptions/{sub}/providers/Microsoft.App/sessionPools?api-version={version}"

    async def call(
        self, method: str, url: str, *, body: Any = None, raw: bytes | None = None, **kw: Any
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        headers.update(kw.pop("headers", {}))
        async with self.http.request(method, url, data=data, headers=headers, **kw) as resp:
            return Reply(resp.status, CIMultiDict(resp.headers), await resp.read())

    async def wait_async_operation(self, url: str) -> dict[str, Any]:
        """Follow an ``Azure-AsyncOperation`` URL to its terminal status."""
        for _ in range(600):
            reply = await self.call("GET", url)
            assert reply.status == 200, reply.body
            body: dict[str, Any] = reply.json()
            if body["status"] != "InProgress":
                return body
            await asyncio.sleep(0.05)
        raise AssertionError("the operation never finished")

    async def create(self, name: str, properties: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """PUT a pool and wait for its operation; returns the GET body."""
        props = {
            "containerType": "Shell",
            "scaleConfiguration": {"maxConcurrentSessions": 5, "readySessionInstances": 0},
        }
        props.update(properties or {})
        version = kw.pop("version", LATEST)
        put = await self.call(
            "PUT",
            self.pool_url(name, version=version, **kw),
            body={"location": "westus", "properties": props},
        )
        assert put.status in (200, 201), put.body
        status = await self.wait_async_operation(put.headers["Azure-AsyncOperation"])
        assert status["status"] == "Succeeded", status
        got = await self.call("GET", self.pool_url(name, version=version, **kw))
        assert got.status == 200
        result: dict[str, Any] = got.json()
        return result

    async def delete(self, name: str, **kw: Any) -> None:
        """DELETE a pool and follow its Location to the end."""
        reply = await self.call("DELETE", self.pool_url(name, **kw))
        if reply.status == 204:
            return
        assert reply.status == 202, reply.body
        for _ in range(600):
            result = await self.call("GET", reply.headers["Location"])
            if result.status != 202:
                assert result.status == 204, result.body
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the delete never finished")


def execute_body(code: str) -> dict[str, Any]:
    return {"codeInputType": "Inline", "executionType": "Synchronous", "code": code, "timeoutInSeconds": 60}
