"""One pool of a :class:`~.server.LocalSessionsServer`: its configuration, its runtime, its frontends.

A hosted pool owns one ``SessionManager`` (its own root directory), one data-plane application
built by :func:`~..frontends.dataplane.app.create_app`, and, when enabled, its MCP server; the
server hands it every request under the pool's endpoint path. Deleting the pool stops its
kernels and removes its directory, nothing else.

Two values describe it: :attr:`HostedPool.config` (the :class:`~..config.PoolConfig` the runtime
and the frontends enforce) and :attr:`HostedPool.settings` (what the management plane shows and
changes). A change of settings is carried into the configuration field by field
(:func:`config_with_settings`), and from there into every frontend: the session runtime and the
MCP server both follow a PATCH.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..config import Isolation, PoolConfig, PoolType
from ..frontends.auth import Middleware
from ..frontends.dataplane.app import create_app
from ..frontends.dataplane.faults import FaultInjector
from ..frontends.mcp.keys import McpKey
from .arm.model import (
    ContainerType,
    EgressStatus,
    LifecycleType,
    PoolResource,
    PoolSettings,
    ProvisioningState,
    ResourceKey,
)
from .arm.operations import ArmOperation

if TYPE_CHECKING:
    from ..frontends.mcp.server import McpServer
    from ..runtime.sessions import SessionManager

__all__ = ["HostedPool", "PoolFrontends", "RuntimeOptions", "config_with_settings", "settings_from_config"]

logger = logging.getLogger("autogen_aca_sessions.local")


@dataclass(frozen=True)
class RuntimeOptions:
    """What the server gives every pool's runtime (the same for all its pools)."""

    api_key: str
    """The server's bearer key (data plane and management plane)."""
    hide_paths: tuple[Path, ...]
    """Host directories no session may see (the server's root: other pools, TLS key)."""
    protected_ports: tuple[int, ...] = ()
    """The server's own ports, never reachable from sessions through the egress proxy."""


@dataclass(frozen=True)
class PoolFrontends:
    """What a pool's data plane runs besides its routes (the Python API's pool has these)."""

    faults: FaultInjector | None = None
    """Azure-like failures injected inside authentication (``--faults``)."""
    middlewares: Sequence[Middleware] = ()
    """Middlewares outside authentication (they see refused calls too)."""


def settings_from_config(config: PoolConfig, *, location: str = "local") -> PoolSettings:
    """The management-plane view of a pool made from ``config`` (periods in whole seconds, at least 1)."""
    timed = config.max_alive_period_seconds is None
    return PoolSettings(
        location=location,
        container_type=ContainerType(config.pool_type.value),
        max_concurrent_sessions=config.max_concurrent_sessions,
        ready_session_instances=config.ready_sessions,
        lifecycle_type=LifecycleType.TIMED if timed else LifecycleType.ON_CONTAINER_EXIT,
        cooldown_seconds=max(1, round(config.cooldown_period_seconds)),
        max_alive_seconds=max(1, round(config.max_alive_period_seconds or config.cooldown_period_seconds)),
        egress=EgressStatus.ENABLED if config.egress else EgressStatus.DISABLED,
        mcp_enabled=config.mcp,
    )


def config_with_settings(config: PoolConfig, old: PoolSettings | None, new: PoolSettings) -> PoolConfig:
    """``config`` with what changed from ``old`` to ``new`` (every setting when ``old`` is None).

    Only changed settings are carried over, so a pool made from a :class:`PoolConfig` keeps its
    exact values (a 0.5 s cooldown) through a PATCH that does not touch them.
    """

    def changed(*names: str) -> bool:
        return old is None or any(getattr(old, n) != getattr(new, n) for n in names)

    changes: dict[str, Any] = {}
    if changed("container_type"):
        changes["pool_type"] = PoolType.parse(new.container_type.value)
    if changed("max_concurrent_sessions"):
        changes["max_concurrent_sessions"] = new.max_concurrent_sessions
    if changed("ready_session_instances"):
        changes["ready_sessions"] = new.ready_session_instances
    if changed("lifecycle_type", "cooldown_seconds", "max_alive_seconds"):
        timed = new.lifecycle_type is LifecycleType.TIMED
        # OnContainerExit has no idle expiry: the cooldown is set to the max alive period,
        # which idle time (never more than age) cannot reach first.
        changes["cooldown_period_seconds"] = float((timed and new.cooldown_seconds) or new.max_alive_seconds)
        changes["max_alive_period_seconds"] = None if timed else float(new.max_alive_seconds)
    if changed("egress"):
        changes["egress"] = new.egress is EgressStatus.ENABLED
    if changed("mcp_enabled"):
        changes["mcp"] = new.mcp_enabled
    return dataclasses.replace(config, **changes) if changes else config


class HostedPool:
    """A pool of the server: ARM state plus, once provisioned, a running runtime."""

    def __init__(
        self,
        key: ResourceKey,
        config: PoolConfig,
        settings: PoolSettings,
        *,
        endpoint: str,
        root: Path,
        mcp_key: McpKey | None = None,
        frontends: PoolFrontends | None = None,
    ) -> None:
        self.key = key
        """Subscription, resource group and name."""
        self.config = config
        """What its runtime and frontends enforce (follows :attr:`settings`)."""
        self.settings = settings
        """Its current settings (the management plane's view)."""
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
        self.mcp_key = mcp_key if mcp_key is not None else McpKey()
        """The key its MCP server (``{endpoint}/mcp``) accepts in ``x-ms-apikey`` (kept while the
        MCP server is off, so that turning it back on does not change it)."""
        self.frontends = frontends if frontends is not None else PoolFrontends()
        """Faults and middlewares its data plane runs."""
        self._mcp_server: McpServer | None = None
        self.busy = False
        """Whether a management operation (create, update, delete) is running on it."""
        self.operation: ArmOperation | None = None
        """The last management operation started on it."""
        self.manager: SessionManager | None = None
        """Its ``SessionManager`` (None until provisioned and after deletion)."""
        self.app: web.Application | None = None
        """Its data-plane application (None until provisioned and after deletion)."""
        self.failure: str | None = None
        """Why provisioning failed, when it did."""
        self.error: Exception | None = None
        """What stopped provisioning, when it failed (re-raised by the Python API)."""
        self._ready = asyncio.Event()

    # ------------------------------------------------------------------ views

    @property
    def name(self) -> str:
        """The pool name."""
        return self.key.name

    @property
    def pool_type(self) -> PoolType:
        """``PythonLTS`` or ``Shell``."""
        return self.config.pool_type

    @property
    def isolation(self) -> Isolation:
        """The confinement in force for its sessions (``none`` until provisioned)."""
        return self.manager.isolation if self.manager is not None else Isolation.NONE

    def resource(self) -> PoolResource:
        """The pool as the management plane shows it."""
        return PoolResource(
            self.key, self.settings, self.endpoint, self.state, self.created_at, self.modified_at
        )

    # ------------------------------------------------------------------ MCP

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

    def rotate_mcp_api_key(self, new_key: str | None = None) -> str:
        """Replace the MCP key (a random one unless given; the old one stops working at once)
        and return it (``rotateMcpServerCredentials``)."""
        return self.mcp_key.rotate(new_key)

    def set_mcp_enabled(self, enabled: bool) -> None:
        """Switch the MCP server on or off (also while serving)."""
        self.settings = dataclasses.replace(self.settings, mcp_enabled=enabled)
        self.config = dataclasses.replace(self.config, mcp=enabled)

    @property
    def mcp_server(self) -> McpServer | None:
        """The MCP server while ``mcpServerSettings.isMcpServerEnabled`` is on (made on first use)."""
        if not self.settings.mcp_enabled or self.manager is None:
            return None
        if self._mcp_server is None:
            from ..frontends.mcp.server import McpServer  # mcp-types: imported only by pools that serve MCP

            self._mcp_server = McpServer(self.manager, self.config, key=self.mcp_key)
        return self._mcp_server

    def _serving_mcp(self) -> McpServer | None:
        return self.mcp_server

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until provisioning ended (either way); False on timeout."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ runtime

    async def provision(self, options: RuntimeOptions) -> None:
        """Start the runtime for the current configuration; the state says how it went."""
        try:
            await self._start_runtime(options)
        except Exception as exc:
            logger.warning("provisioning session pool %s failed: %s", self.key.resource_id, exc)
            self.failure = str(exc) or type(exc).__name__
            self.error = exc
            self.state = ProvisioningState.FAILED
            await self._stop_runtime()
        else:
            self.state = ProvisioningState.SUCCEEDED
        finally:
            self._ready.set()

    async def apply(self, settings: PoolSettings, options: RuntimeOptions) -> None:
        """Change the settings: limits change in place, in the runtime and the MCP server alike; a
        new container type or network setting needs a new runtime (the pool's sessions end, as
        on Azure when the template changes)."""
        old = self.settings
        self.settings = settings
        self.config = config_with_settings(self.config, old, settings)
        self.modified_at = datetime.now(timezone.utc)
        rebuild = (
            self.manager is None
            or old.container_type is not settings.container_type
            or old.egress is not settings.egress
        )
        if rebuild:
            self._ready.clear()
            self.failure = self.error = None
            self.state = ProvisioningState.IN_PROGRESS
            await self._stop_runtime()
            await self.provision(options)
            return
        assert self.manager is not None  # not rebuilding: the runtime is there
        self.manager.reconfigure(self.config)
        if self._mcp_server is not None:
            self._mcp_server.reconfigure(self.config)
        self.state = ProvisioningState.SUCCEEDED

    async def remove(self) -> None:
        """Stop every kernel and remove the pool's directory."""
        self.state = ProvisioningState.DELETING
        await self._stop_runtime()
        await asyncio.to_thread(shutil.rmtree, self.root, True)

    # ------------------------------------------------------------------ internals

    async def _start_runtime(self, options: RuntimeOptions) -> None:
        from ..runtime.sessions import SessionManager  # the runtime needs the 'local' extra

        await asyncio.to_thread(self.root.mkdir, mode=0o700, parents=True, exist_ok=True)
        manager = SessionManager(
            root=self.root / "sessions-root", config=self.config, hide_paths=options.hide_paths
        )
        self.manager = manager
        await manager.start()
        for port in options.protected_ports:
            manager.protect_port(port)
        if self.settings.mcp_enabled:
            # mcp-types builds a few hundred pydantic models on import: off the event loop.
            await asyncio.to_thread(
                importlib.import_module, "autogen_aca_sessions.local.frontends.mcp.server"
            )
        app = create_app(
            manager,
            api_key=options.api_key,
            middlewares=self.frontends.middlewares,
            faults=self.frontends.faults,
            mcp=self._serving_mcp,
        )
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
