"""Where a pool's MCP server is and how to authenticate to it, in the forms MCP clients take.

The pool's platform-managed MCP server lives at ``{poolManagementEndpoint}/mcp`` and reads its
own API key from the ``x-ms-apikey`` header (not the data plane's bearer token). The same
:class:`McpConnection` serves a local pool (``aca-sessions serve --mcp``,
``LocalSessionPool(mcp=True)``) and an Azure pool with ``mcpServerSettings`` enabled: only the
URL and the key change.

::

    conn = McpConnection.from_pool(pool)                       # a started LocalSessionPool(mcp=True)
    conn = McpConnection.for_endpoint(pool_management_endpoint, api_key)   # an Azure pool

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
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["MCP_API_KEY_HEADER", "McpConnection"]

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
