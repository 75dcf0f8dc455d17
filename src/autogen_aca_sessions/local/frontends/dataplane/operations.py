"""The names of the data plane's operations, as routes carry them and middlewares read them."""

from __future__ import annotations

import enum

from aiohttp import web

__all__ = ["OPERATION_KEY", "Operation"]


class Operation(str, enum.Enum):
    """What a request does, at the grain fault plans select calls by."""

    EXECUTE = "execute"
    """Runs code or a shell command (``POST /executions``, ``POST /code/execute``)."""
    POLL = "poll"
    """Reads an execution (``GET /executions/<id>``)."""
    FILES = "files"
    """Uploads, lists, reads or deletes files."""
    SESSION = "session"
    """Reads or deletes one session."""
    LIST = "list"
    """Lists sessions."""
    METADATA = "metadata"
    """Reads the pool's runtime metadata."""
    OTHER = "other"
    """No operation of the pool (the call will be refused)."""

    def __str__(self) -> str:
        return str(self.value)


# aiohttp 3.13 added typed request keys (and warns about plain strings); older releases have none.
OPERATION_KEY: web.RequestKey[Operation] | str = (
    web.RequestKey("aca_operation", Operation) if hasattr(web, "RequestKey") else "aca_operation"
)
"""Request key under which the pool's app puts the :class:`Operation` of a request, before any
middleware of the caller's or the pool's runs."""
