"""The pool's platform-managed MCP server (``{endpoint}/mcp``), emulated on the local pool.

``server`` holds the HTTP and JSON-RPC layer, ``protocol`` the envelopes (the MCP project's
``mcp-types``), ``tools`` the tool schemas and their runs in the pool's sessions,
``environments`` the ``environmentId`` bookkeeping and ``keys`` the ``x-ms-apikey`` key.

Only ``keys`` is imported here: the rest needs ``mcp-types`` (the ``local`` extra), imported when
a pool with ``mcp=True`` starts.
"""

from __future__ import annotations

from .keys import MCP_API_KEY_HEADER, McpKey, generate_mcp_api_key

__all__ = ["MCP_API_KEY_HEADER", "McpKey", "generate_mcp_api_key"]
