"""The MCP server's own API key: separate from the data plane's bearer key, and rotatable."""

from __future__ import annotations

import secrets

from ..auth import keys_match

__all__ = ["MCP_API_KEY_HEADER", "McpKey", "generate_mcp_api_key"]

MCP_API_KEY_HEADER = "x-ms-apikey"
"""The header Azure's pool MCP server reads its key from (never ``Authorization``)."""


def generate_mcp_api_key() -> str:
    """A random key that never starts with ``-`` (a command line would read it as an option)."""
    while True:
        key = secrets.token_urlsafe(32)
        if not key.startswith("-"):
            return key


class McpKey:
    """The current MCP API key of a pool.

    Rotation takes effect at once: the old key stops working on the next request. (Azure caches
    key validation for up to five minutes after a rotation; nothing depends on that delay, and a
    leaked key should die as soon as it can.)
    """

    def __init__(self, key: str | None = None) -> None:
        self._key = key or generate_mcp_api_key()

    @property
    def value(self) -> str:
        """The key clients send in ``x-ms-apikey``."""
        return self._key

    def matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is the current key (constant-time comparison)."""
        if not presented:
            return False
        return keys_match(presented.strip(), self._key)

    def rotate(self, new_key: str | None = None) -> str:
        """Replace the key (a random one unless given) and return the new one."""
        self._key = new_key or generate_mcp_api_key()
        return self._key
