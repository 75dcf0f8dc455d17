"""Shared pieces of the Sandboxes HTTP tests: a real ``LocalSessionsServer`` over TLS on
127.0.0.1, its sandbox groups, the official SDK's clients pointed at it, and raw HTTP.

The sync SDK blocks, so tests run it in a thread (``asyncio.to_thread``) while the module's
event loop serves the requests.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from azure.containerapps.sandbox import SandboxGroupClient
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from multidict import CIMultiDict

from autogen_aca_sessions.local import LocalSessionsServer

SUB = "6b1f3c2d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
"""The subscription of the tests' groups (any GUID works locally)."""
RG = "rg-sandboxes"
SDK_API = "2026-02-01-preview"
SPEC_API = "2026-09-01-preview"
ARM_API = "2026-02-01-preview"


class RecordingTransport(RequestsTransport):
    """The SDK's own transport, recording ``METHOD path`` of every request it sends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[str] = []

    def send(self, request: HttpRequest, **kwargs: Any) -> Any:  # type: ignore[override]
        path = request.url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        self.sent.append(f"{request.method} /{path}")
        return super().send(request, **kwargs)


def group_client(
    server: LocalSessionsServer, group: str, *, transport: RequestsTransport | None = None
) -> SandboxGroupClient:
    """The SDK's ``SandboxGroupClient`` on ``server``'s https endpoint, with its key as token."""
    ca = str(server.tls_ca_file)
    return SandboxGroupClient(
        server.base_url,
        server.credential,
        subscription_id=SUB,
        resource_group=RG,
        sandbox_group=group,
        transport=transport or RequestsTransport(connection_verify=ca),
        connection_verify=ca,
    )


@dataclass
class Reply:
    """A response, read whole."""

    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Raw:
    """Plain HTTP to the server with its key (the wire as curl sees it)."""

    def __init__(self, server: LocalSessionsServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http

    def group_url(self, group: str, tail: str = "", *, version: str | None = SDK_API, rg: str = RG) -> str:
        url = f"{self.server.base_url}/subscriptions/{SUB}/resourceGroups/{rg}/sandboxGroups/{group}"
        if tail:
            url += "/" + tail
        if version is not None:
            url += ("&" if "?" in url else "?") + f"api-version={version}"
        return url

    def arm_url(self, name: str = "", *, rg: str | None = RG, version: str | None = ARM_API) -> str:
        scope = f"/subscriptions/{SUB}" + (f"/resourceGroups/{rg}" if rg is not None else "")
        url = f"{self.server.base_url}{scope}/providers/Microsoft.App/sandboxGroups" + (
            f"/{name}" if name else ""
        )
        return url + (f"?api-version={version}" if version is not None else "")

    async def call(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Authorization": f"Bearer {self.server.api_key}"}
        if data is not None and raw is None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        async with self.http.request(method, url, data=data, headers=sent) as resp:
            return Reply(resp.status, CIMultiDict(resp.headers), await resp.read())


def client_ssl(server: LocalSessionsServer) -> ssl.SSLContext:
    """An SSL context trusting the server's self-signed certificate."""
    return server.ssl_context()
