"""One pool of a :class:`~.server.LocalSessionsServer`: its settings, its runtime, its data plane.

A hosted pool owns one ``SessionManager`` (its own root directory) and one data-plane
application built by :func:`~.app.create_app`, the same one a ``LocalSessionPool`` serves; the
server hands it every request under the pool's endpoint path. Deleting the pool stops its
kernels and removes its directory, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..config import Isolation, PoolConfig, PoolType
from ..frontends.dataplane.app import create_app
from ..frontends.mcp.keys import McpKey
from .arm.model import (
    EgressStatus,
    LifecycleType,
    PoolResource,
    PoolSettings,
    ProvisioningState,
    ResourceKey,
)
from .arm.operations import Operation

if TYPE_CHECKING:
    from ..frontends.mcp.server import McpServer
    from ..runtime.sessions import SessionManager

__all__ = ["HostedPool", "RuntimeOptions"]

logger = logging.getLogger("autogen_aca_sessions.local")


@dataclass(frozen=True)
class RuntimeOptions:
    """What the server gives every pool's runtime (the same for all its pools)."""

    api_key: str
    """The server's bearer key (data plane and management plane)."""
    defaults: PoolConfig
    """The configuration every pool starts from (sandbox, kernel launcher, execution cap,
    limits, body caps); a pool's own settings replace the rest."""
    hide_paths: tuple[Path, ...]
    """Host directories no session may see (the server's root: other pools, TLS key)."""
    protected_ports: tuple[int, ...] = ()
    """The server's own ports, never reachable from sessions through the egress proxy."""


class HostedPool:
    """A pool of the server: ARM state plus, once provisioned, a running runtime."""

    def __init__(self, key: ResourceKey, settings: PoolSettings, *, endpoint: str, root: Path) -> None:
        self.key = key
        """Subscription, resource group and name."""
        self.settings = settings
        """Its current settings."""
        self.endpoint = endpoint
        """Its ``poolManagementEndpoint``."""
        self.root = root
        """Its directory (sessions and private files); removed when the pool is deleted."""
        self.state = ProvisioningState.IN_PROGRESS
        """Its ``provisioningState``."""
        now = datetime.now(timezone.utc)
        self.created_at = now
        """When it was created."""
        self.modified_at = now
        """When its settings last changed."""
        self.mcp_key = McpKey()
        """The key its MCP server (``{endpoint}/mcp``) accepts in ``x-ms-apikey`` (kept while the
        MCP server is off, so that turning it back on does not change it)."""
        self._mcp_server: McpServer | None = None
        self.busy = False
        """Whether a management operation (create, update, delete) is running on it."""
        self.operation: Operation | None = None
        """The last management operation started on it."""
        self.manager: SessionManager | None = None
        """Its ``SessionManager`` (None until provisioned and after deletion)."""
        self.app: web.Application | None = None
        """Its data-plane application (None until provisioned and after deletion)."""
        self.failure: str | None = None
        """Why provisioning failed, when it did."""
        self._ready = asyncio.Event()

    # ------------------------------------------------------------------ views

    @property
    def name(self) -> str:
        """The pool name."""
        return self.key.name

    @property
    def pool_type(self) -> str:
        """``PythonLTS`` or ``Shell``."""
        return self.settings.container_type.value

    @property
    def isolation(self) -> Isolation:
        """The confinement in force for its sessions (``none`` until provisioned)."""
        return self.manager.isolation if self.manager is not None else Isolation.NONE

    def resource(self) -> PoolResource:
        """The pool as the management plane shows it."""
        return PoolResource(
            self.key, self.settings, self.endpoint, self.state, self.created_at, self.modified_at
        )

    @property
    def mcp_enabled(self) -> bool:
        """Whether ``{endpoint}/mcp`` is served (``mcpServerSettings.isMcpServerEnabled``)."""
        return self.settings.mcp_enabled

    @property
    def mcp_endpoint(self) -> str:
        """``{endpoint}/mcp`` (``mcpServerSettings.mcpServerEndpoint``)."""
        return self.endpoint + "/mcp"

    @property
    def mcp_api_key(self) -> str:
        """The current MCP key (``fetchMcpServerCredentials``)."""
        return self.mcp_key.value

    def rotate_mcp_key(self, new_key: str | None = None) -> str:
        """Replace the MCP key (a random one unless given; the old one stops working at once)."""
        return self.mcp_key.rotate(new_key)

    def _serving_mcp(self) -> McpServer | None:
        """The MCP server while ``mcpServerSettings.isMcpServerEnabled`` is on (made on first use)."""
        if not self.settings.mcp_enabled or self.manager is None:
            return None
        if self._mcp_server is None:
            from ..frontends.mcp.server import McpServer  # mcp-types: imported only by pools that serve MCP

            self._mcp_server = McpServer(self.manager, self.manager.config, key=self.mcp_key)
        return self._mcp_server

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until provisioning ended (either way); False on timeout."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ runtime

    async def provision(self, options: RuntimeOptions) -> None:
        """Start the runtime for the current settings; the state says how it went."""
        try:
            await self._start_runtime(options)
        except Exception as exc:
            logger.warning("provisioning session pool %s failed: %s", self.key.resource_id, exc)
            self.failure = str(exc) or type(exc).__name__
            self.state = ProvisioningState.FAILED
            await self._stop_runtime()
        else:
            self.state = ProvisioningState.SUCCEEDED
        finally:
            self._ready.set()

    async def apply(self, settings: PoolSettings, options: RuntimeOptions) -> None:
        """Change the settings: limits change in place; a new container type or network
        setting needs a new runtime (the pool's sessions end, as on Azure when the template changes)."""
        old = self.settings
        self.settings = settings
        self.modified_at = datetime.now(timezone.utc)
        rebuild = (
            self.manager is None
            or old.container_type is not settings.container_type
            or old.egress is not settings.egress
        )
        if rebuild:
            self._ready.clear()
            self.state = ProvisioningState.IN_PROGRESS
            await self._stop_runtime()
            await self.provision(options)
            return
        assert self.manager is not None  # not rebuilding: the runtime is there
        self.manager.reconfigure(self.pool_config(options.defaults))
        self.state = ProvisioningState.SUCCEEDED

    async def remove(self) -> None:
        """Stop every kernel and remove the pool's directory."""
        self.state = ProvisioningState.DELETING
        await self._stop_runtime()
        await asyncio.to_thread(shutil.rmtree, self.root, True)

    # ------------------------------------------------------------------ internals

    def pool_config(self, defaults: PoolConfig) -> PoolConfig:
        """The runtime configuration of this pool: ``defaults`` with the pool's own settings."""
        s = self.settings
        timed = s.lifecycle_type is LifecycleType.TIMED
        return dataclasses.replace(
            defaults,
            pool_type=PoolType.parse(s.container_type.value),
            pool_name=self.key.name,
            max_concurrent_sessions=s.max_concurrent_sessions,
            ready_sessions=s.ready_session_instances,
            # OnContainerExit has no idle expiry: the cooldown is set to the max alive period,
            # which idle time (never more than age) cannot reach first.
            cooldown_period_seconds=float((timed and s.cooldown_seconds) or s.max_alive_seconds),
            max_alive_period_seconds=None if timed else float(s.max_alive_seconds),
            egress=s.egress is EgressStatus.ENABLED,
            mcp=s.mcp_enabled,
        )

    async def _start_runtime(self, options: RuntimeOptions) -> None:
        from ..runtime.sessions import SessionManager  # the runtime needs the 'local' extra

        await asyncio.to_thread(self.root.mkdir, mode=0o700, parents=True, exist_ok=True)
        config = self.pool_config(options.defaults)
        manager = SessionManager(
            root=self.root / "sessions-root", config=config, hide_paths=options.hide_paths
        )
        self.manager = manager
        await manager.start()
        for port in options.protected_ports:
            manager.protect_port(port)
        app = create_app(manager, api_key=options.api_key, mcp=self._serving_mcp)
        app.freeze()
        await app.startup()
        self.app = app

    async def _stop_runtime(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            with contextlib.suppress(Exception):
                await app.shutdown()
                await app.cleanup()
        self._mcp_server = None  # it serves the manager that goes now
        manager, self.manager = self.manager, None
        if manager is not None:
            try:
                await manager.close()
            except Exception:
                logger.exception("closing the sessions of %s failed", self.key.resource_id)

    def __repr__(self) -> str:
        return f"HostedPool({self.key.resource_id!r}, {self.pool_type}, {self.state.value})"
