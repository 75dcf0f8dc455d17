"""The pool-host interface: what the CLI (and anything else that runs a local server for a user)
needs from the object that serves pools, and the typed description it prints.

``LocalSessionPool`` (a ``LocalSessionsServer`` with a pool of its own) is the implementation;
``aca-sessions serve`` builds one from a whole :class:`~..config.PoolConfig`, starts it, prints
:meth:`PoolHost.describe` as its banner and closes it on SIGINT/SIGTERM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import Isolation, PoolType

__all__ = ["HostDescription", "McpAccess", "PoolHost"]


@dataclass(frozen=True)
class McpAccess:
    """How to reach a pool's MCP server."""

    endpoint: str
    """``{pool endpoint}/mcp``."""
    api_key: str
    """The key sent in ``x-ms-apikey`` (not the bearer key)."""


@dataclass(frozen=True)
class HostDescription:
    """What a running host tells its user (the ``serve`` banner's facts)."""

    endpoint: str
    """The host's own pool's ``poolManagementEndpoint``."""
    api_key: str
    """The bearer key of both planes."""
    isolation: Isolation
    """The confinement in force for the pool's sessions."""
    pool_type: PoolType
    """What the pool's sessions run."""
    egress: bool
    """Whether session code may reach the network."""
    base_url: str
    """``scheme://host:port`` of the server (the ARM base URL when the management plane is on)."""
    tls_ca_file: Path | None
    """The certificate clients must trust (None without TLS)."""
    mcp: McpAccess | None
    """The pool's MCP server, when enabled."""
    fault_plan: str | None
    """The fault plan in force (``429=0.2,seed=7``), when faults are injected."""
    management_plane: bool
    """Whether ``Microsoft.App/sessionPools`` is served at :attr:`base_url`."""
    serves_root: bool
    """Whether the pool also answers data-plane calls at :attr:`base_url` itself."""
    egress_allowlist: tuple[str, ...] | None = None
    """Hosts sessions may reach through the egress proxy when :attr:`egress` is off (local extension)."""


class PoolHost(Protocol):
    """A started-on-demand server with one pool of its own."""

    async def start(self) -> None:
        """Start serving; a failed start closes what it had started."""
        ...

    async def close(self) -> None:
        """Stop serving and remove everything it made (idempotent)."""
        ...

    def describe(self) -> HostDescription:
        """What the running host serves and how to reach it."""
        ...

    async def wait_ready(self) -> None:
        """Return once the host's pool has a session ready (a started kernel free)."""
        ...
