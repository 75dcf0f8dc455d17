"""What the data plane's handlers share: the pool's state on the application, and the routed call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

from ...config import PoolConfig
from ...runtime.executions import ExecutionStore
from ...runtime.protocol import SessionManagerLike
from .wire.versions import ApiVersionSpec

__all__ = ["CONTEXT_KEY", "SESSION_GUID_HEADER", "Call", "Handler", "PoolContext"]

SESSION_GUID_HEADER = "x-ms-session-guid"
"""Names one incarnation of a session (a new random one whenever the identifier is created anew)."""


@dataclass
class PoolContext:
    """Everything the handlers share, stored on the application."""

    manager: SessionManagerLike
    """The session runtime."""
    api_key: str
    """The bearer key every request must carry."""
    config: PoolConfig
    """The pool's configuration: its type and name (other names under ``/sessionPools/`` are
    404), the execution cap ``timeoutInSeconds`` is clamped to, the body limits (above them 413)."""
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    """When the application was built (``createdAt`` of ``GET /metadata``)."""
    executions: ExecutionStore = field(default_factory=ExecutionStore)
    """Accepted executions, for ``GET /executions/<id>``."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Background tasks of asynchronous executions."""


CONTEXT_KEY: web.AppKey[PoolContext] = web.AppKey("aca_pool_context", PoolContext)


@dataclass
class Call:
    """A routed request: what handlers receive."""

    request: web.Request
    """The aiohttp request."""
    ctx: PoolContext
    """Shared pool state."""
    spec: ApiVersionSpec
    """The api-version the request named."""
    params: dict[str, str]
    """Path parameters (``name``, ``execution_id``)."""
    started: float = field(default_factory=time.perf_counter)
    """When routing finished (for ``x-ms-overall-execution-time``)."""
    session_guid: str | None = None
    """The ``x-ms-session-guid`` of the session the call reached, sent back on its response."""

    def query(self, name: str) -> str | None:
        """A query parameter (the first when repeated)."""
        return self.request.query.get(name)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
"""Serves one operation."""
