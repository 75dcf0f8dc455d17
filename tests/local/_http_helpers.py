"""Small helpers the HTTP tests of the local pool share (imported as ``_http_helpers``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

LEGACY_VERSIONS = ("2024-02-02-preview", "2024-08-02-preview")
CURRENT_VERSIONS = ("2024-10-02-preview", "2025-02-02-preview", "2025-10-02-preview")
ALL_VERSIONS = LEGACY_VERSIONS + CURRENT_VERSIONS
MANAGED_VERSIONS = ("2025-02-02-preview", "2025-10-02-preview")


@dataclass
class Reply:
    """A response, read completely."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        """The Azure.Core error object, after checking the body has exactly that shape."""
        body = self.json()
        assert set(body) == {"error"}, body
        err = body["error"]
        assert set(err) == {"code", "message", "target", "details"}, err
        assert err["details"] == []
        assert isinstance(err["message"], str)
        assert err["message"]
        assert self.headers["x-ms-error-code"] == err["code"]
        assert self.headers["Content-Type"].startswith("application/json")
        return dict(err)


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    version: str | None = None,
    identifier: str | None = None,
    params: dict[str, str] | None = None,
    **kwargs: Any,
) -> Reply:
    """Send one request; ``version`` and ``identifier`` become the usual query parameters."""
    query: dict[str, str] = {}
    if version is not None:
        query["api-version"] = version
    if identifier is not None:
        query["identifier"] = identifier
    query.update(params or {})
    async with http.request(method, url, params=query, **kwargs) as response:
        return Reply(response.status, response.headers, await response.read())


def legacy_body(code: str, **extra: Any) -> dict[str, Any]:
    return {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code, **extra}}


def current_body(code: str, **extra: Any) -> dict[str, Any]:
    return {"codeInputType": "Inline", "executionType": "Synchronous", "code": code, **extra}


async def execute(
    http: aiohttp.ClientSession, endpoint: str, version: str, identifier: str, code: str, **extra: Any
) -> Reply:
    """Run ``code`` with the execute operation of ``version``'s contract."""
    if version in LEGACY_VERSIONS:
        return await call(
            http,
            "POST",
            f"{endpoint}/code/execute",
            version=version,
            identifier=identifier,
            json=legacy_body(code, **extra),
        )
    return await call(
        http,
        "POST",
        f"{endpoint}/executions",
        version=version,
        identifier=identifier,
        json=current_body(code, **extra),
    )


def form(name: str, data: bytes, field: str = "file") -> aiohttp.FormData:
    # quote_fields=False: the filename goes on the wire as written (RFC 7578), as real clients send it.
    payload = aiohttp.FormData(quote_fields=False)
    payload.add_field(field, data, filename=name, content_type="application/octet-stream")
    return payload


async def poll(http: aiohttp.ClientSession, url: str, *, attempts: int = 600) -> Reply:
    """GET ``url`` until the execution is no longer Running."""
    for _ in range(attempts):
        async with http.get(url) as response:
            reply = Reply(response.status, response.headers, await response.read())
        if reply.status != 200 or reply.json()["status"] not in ("Running", "NotStarted"):
            return reply
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} still running after {attempts} polls")
