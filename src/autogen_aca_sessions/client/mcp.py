"""Where a pool's MCP server is and how to authenticate to it, in the forms MCP clients take.

The pool's platform-managed MCP server lives at ``{poolManagementEndpoint}/mcp`` and reads its
own API key from the ``x-ms-apikey`` header (not the data plane's bearer token). The same
:class:`McpConnection` serves a local pool (``aca-sessions serve --mcp``,
``LocalSessionPool(mcp=True)``) and an Azure pool with ``mcpServerSettings`` enabled: only the
URL and the key change.

::

    conn = McpConnection.from_pool(pool)                       # a started LocalSessionPool(mcp=True)
    conn = McpConnection.for_endpoint(pool_management_endpoint, api_key)   # an Azure pool
    conn = await fetch_mcp_connection(pool_resource_id)        # an Azure pool, through ARM

    # Agent Framework (mcp 2.x):
    MCPStreamableHTTPTool(**conn.agent_framework_tool_kwargs())
    # AutoGen (autogen-ext[mcp], mcp 1.x):
    McpWorkbench(StreamableHttpServerParams(**conn.autogen_server_params()))
    # VS Code: .vscode/mcp.json
    print(conn.vscode_mcp_json())

Nothing here imports an MCP SDK or a framework: the helpers return plain values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from .auth import TokenProvider, TokenSource
from .errors import SessionsConnectionError, SessionsHTTPError, error_class_for_status

__all__ = [
    "ARM_ENDPOINT",
    "MCP_API_KEY_HEADER",
    "MCP_ARM_API_VERSION",
    "McpConnection",
    "fetch_mcp_connection",
]

ARM_ENDPOINT = "https://management.azure.com"
"""Azure Resource Manager (public cloud)."""

MCP_ARM_API_VERSION = "2025-10-02-preview"
"""The ARM api-version whose session pools have ``mcpServerSettings`` and the credential actions."""

MCP_API_KEY_HEADER = "x-ms-apikey"
"""The header the pool's MCP server reads its key from."""


class _McpPool(Protocol):
    @property
    def mcp_endpoint(self) -> str: ...
    @property
    def mcp_api_key(self) -> str: ...


@dataclass(frozen=True)
class McpConnection:
    """A pool's MCP endpoint and key."""

    url: str
    """The full MCP endpoint (Azure: ``properties.mcpServerSettings.mcpServerEndpoint``)."""
    api_key: str
    """The MCP API key (Azure: ``fetchMcpServerCredentials``; local: ``pool.mcp_api_key``)."""
    name: str = "aca-sessions"
    """The server name clients show (the key of VS Code's ``servers`` map, Agent Framework's tool name)."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"The MCP endpoint must be an http(s) URL, not {self.url!r}")
        if not self.api_key or any(c in self.api_key for c in "\r\n"):
            raise ValueError("The MCP API key must be a non-empty single-line string")

    @classmethod
    def for_endpoint(
        cls, pool_management_endpoint: str, api_key: str, *, name: str = "aca-sessions"
    ) -> McpConnection:
        """The MCP server of the pool at ``pool_management_endpoint`` (``{endpoint}/mcp``)."""
        return cls(pool_management_endpoint.rstrip("/") + "/mcp", api_key, name)

    @classmethod
    def from_pool(cls, pool: _McpPool, *, name: str = "aca-sessions") -> McpConnection:
        """The MCP server of a started ``LocalSessionPool(mcp=True)`` (or anything with
        ``mcp_endpoint`` and ``mcp_api_key``)."""
        return cls(pool.mcp_endpoint, pool.mcp_api_key, name)

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers every MCP request carries."""
        return {MCP_API_KEY_HEADER: self.api_key}

    def vscode_config(self) -> dict[str, Any]:
        """A VS Code ``.vscode/mcp.json`` document declaring this server."""
        return {"servers": {self.name: {"type": "http", "url": self.url, "headers": self.headers}}}

    def vscode_mcp_json(self) -> str:
        """:meth:`vscode_config` as indented JSON text."""
        return json.dumps(self.vscode_config(), indent=2)

    def autogen_server_params(self, *, timeout_seconds: float = 240.0) -> dict[str, Any]:
        """Keyword arguments of autogen-ext's ``StreamableHttpServerParams`` (for ``McpWorkbench``).

        ``timeout_seconds`` bounds one tool call; the pool's own limit (220 s by default on
        Azure) stops runs before it.
        """
        return {"url": self.url, "headers": self.headers, "timeout": timeout_seconds}

    def agent_framework_tool_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of Agent Framework's ``MCPStreamableHTTPTool``.

        The server has tools only, so prompts are not loaded.
        """
        return {"name": self.name, "url": self.url, "static_headers": self.headers, "load_prompts": False}


def _get_ci(data: Any, name: str) -> Any:
    """A property by name in any letter case (the spec's own example spells it ``mcPServerSettings``)."""
    if not isinstance(data, Mapping):
        return None
    if name in data:
        return data[name]
    lowered = name.lower()
    return next((value for key, value in data.items() if str(key).lower() == lowered), None)


async def fetch_mcp_connection(
    pool_resource_id: str,
    credential: TokenSource | None = None,
    *,
    arm_endpoint: str = ARM_ENDPOINT,
    api_version: str = MCP_ARM_API_VERSION,
    session: aiohttp.ClientSession | None = None,
    name: str = "aca-sessions",
) -> McpConnection:
    """The MCP endpoint and key of an Azure session pool, read through ARM.

    ``pool_resource_id`` is ``/subscriptions/<sub>/resourceGroups/<rg>/providers/
    Microsoft.App/sessionPools/<name>``. GETs the pool for
    ``properties.mcpServerSettings.mcpServerEndpoint`` and POSTs ``fetchMcpServerCredentials``
    for the key. ``credential`` is anything :class:`SessionsClient` takes (None:
    ``DefaultAzureCredential``), asked for ``{arm_endpoint}/.default``. The caller needs the pool's
    ``Microsoft.App/sessionPools/fetchMcpServerCredentials/action`` permission (Contributor has it).
    """
    resource = "/" + pool_resource_id.strip("/")
    if "/providers/microsoft.app/sessionpools/" not in resource.lower():
        raise ValueError(f"Not a session pool resource id: {pool_resource_id!r}")
    base = arm_endpoint.rstrip("/") + quote(resource) + f"?api-version={quote(api_version)}"
    tokens = TokenProvider(credential, scope=arm_endpoint.rstrip("/") + "/.default")
    owned = session is None
    http = session or aiohttp.ClientSession()
    try:
        headers = {"Authorization": f"Bearer {await tokens.get_token()}", "Accept": "application/json"}
        pool = await _arm_json(http, "GET", base, headers)
        settings = _get_ci(_get_ci(pool, "properties"), "mcpServerSettings")
        url = _get_ci(settings, "mcpServerEndpoint")
        if not _get_ci(settings, "isMcpServerEnabled") or not isinstance(url, str) or not url:
            raise ValueError(
                f"The session pool {resource} does not serve an MCP server: set "
                "properties.mcpServerSettings.isMcpServerEnabled to true (api-version 2025-10-02-preview)."
            )
        action = base.replace("?api-version=", "/fetchMcpServerCredentials?api-version=", 1)
        credentials = await _arm_json(http, "POST", action, headers)
        key = _get_ci(credentials, "apiKey")
        if not isinstance(key, str) or not key:
            raise ValueError(f"fetchMcpServerCredentials of {resource} returned no apiKey")
        return McpConnection(url, key, name)
    finally:
        await tokens.close()
        if owned:
            await http.close()


async def _arm_json(http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str]) -> Any:
    try:
        async with http.request(method, url, headers=headers) as response:
            text = await response.text()
            if response.status >= 400:
                try:
                    error = _get_ci(json.loads(text), "error")
                except ValueError:
                    error = None
                cls = error_class_for_status(response.status)
                raise cls(
                    response.status,
                    str(_get_ci(error, "message") or response.reason or "ARM refused the request"),
                    error_code=_get_ci(error, "code") or response.headers.get("x-ms-error-code"),
                    body=text,
                    headers=dict(response.headers),
                    method=method,
                    url=url,
                )
    except SessionsHTTPError:
        raise
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SessionsConnectionError(f"{method} {url} failed: {exc}", method=method, url=url) from exc
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        raise SessionsHTTPError(
            response.status, "ARM answered with a body that is not JSON", body=text, method=method, url=url
        ) from None
