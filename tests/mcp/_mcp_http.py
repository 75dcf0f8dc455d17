"""Raw-HTTP helpers for the MCP tests (imported as ``_mcp_http``): JSON-RPC posts to ``/mcp``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy


@dataclass
class RpcReply:
    """One HTTP answer of the MCP endpoint, read completely."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)

    @property
    def result(self) -> dict[str, Any]:
        body = self.json()
        assert self.status == 200, (self.status, body)
        assert "error" not in body, body
        assert body["jsonrpc"] == "2.0"
        return dict(body["result"])

    @property
    def error(self) -> dict[str, Any]:
        body = self.json()
        assert body["jsonrpc"] == "2.0", body
        assert set(body) == {"jsonrpc", "id", "error"}, body
        assert isinstance(body["error"]["code"], int)
        assert body["error"]["message"]
        return dict(body["error"])


async def post(
    http: aiohttp.ClientSession,
    url: str,
    message: Any,
    *,
    key: str | None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> RpcReply:
    """POST ``message`` (or ``raw`` bytes) as ``curl -H Content-Type: application/json`` does."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["x-ms-apikey"] = key
    data = raw if raw is not None else json.dumps(message).encode()
    async with http.post(url, data=data, headers=sent) as resp:
        return RpcReply(resp.status, resp.headers, await resp.read())


async def call_tool(
    http: aiohttp.ClientSession, url: str, key: str, name: str, arguments: dict[str, Any], request_id: Any = 1
) -> dict[str, Any]:
    """``tools/call`` and its result object."""
    reply = await post(
        http,
        url,
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        },
        key=key,
    )
    return reply.result


async def launch(http: aiohttp.ClientSession, url: str, key: str) -> str:
    """A new environment id from ``launchShell``."""
    result = await call_tool(http, url, key, "launchShell", {})
    environment_id = result["structuredContent"]["environmentId"]
    assert isinstance(environment_id, str)
    return environment_id


def text_of(result: dict[str, Any]) -> str:
    """The text content blocks of a tool result, joined."""
    return "\n".join(block["text"] for block in result["content"] if block["type"] == "text")
