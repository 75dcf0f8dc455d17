"""``LocalSessionPool``: the dynamic-sessions data plane on loopback, one Jupyter kernel per session.

::

    async with LocalSessionPool() as pool:
        client = SessionsClient(pool.endpoint, pool.async_credential)
        ...

The pool binds ``127.0.0.1`` on a free port by default and refuses a non-loopback address unless
``allow_remote=True`` (session code runs with real interpreters: do not expose it casually).
Every request needs ``Authorization: Bearer <api_key>``; :attr:`credential` and
:attr:`async_credential` hand that key to azure-core style clients.

A ``LocalSessionPool`` is a :class:`~.server.LocalSessionsServer` hosting one pool of its own
(its :attr:`~.server.LocalSessionsServer.default_pool`), made from one :class:`~..config.PoolConfig`;
``management_plane=True`` also serves ARM on the same port, so that more pools can be made.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..address import is_loopback_host
from ..config import Isolation, KernelLauncherKind, PoolConfig, PoolType, SandboxMode
from ..frontends.auth import Middleware, generate_api_key
from ..frontends.dataplane.faults import FaultInjector
from ..frontends.mcp.keys import McpKey
from .host import HostDescription, McpAccess
from .hosted import HostedPool, PoolFrontends
from .server import LOCAL_RESOURCE_GROUP, LOCAL_SUBSCRIPTION, LocalSessionsServer

if TYPE_CHECKING:
    from ..frontends.mcp.server import McpServer
    from ..runtime.sessions import SessionManager

__all__ = [
    "LOCAL_RESOURCE_GROUP",
    "LOCAL_SUBSCRIPTION",
    "LocalSessionPool",
    "generate_api_key",
    "is_loopback_host",
]

logger = logging.getLogger("autogen_aca_sessions.local")


def _fault_injector(faults: object) -> FaultInjector | None:
    """``faults`` as an injector: one as is, a plan string parsed (``FaultPlanError``, a
    ``ValueError``, when it does not parse); anything else is a ``TypeError`` now, not later."""
    if faults is None or isinstance(faults, FaultInjector):
        return faults
    if isinstance(faults, str):
        return FaultInjector.from_string(faults)
    raise TypeError(
        "faults must be a FaultInjector or a fault plan string such as '429=0.5,seed=7', "
        f"not {type(faults).__name__}"
    )


class LocalSessionPool(LocalSessionsServer):
    """A local session pool serving the Azure dynamic-sessions REST API for every api-version."""

    _what = "local session pool"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        pool_type: PoolType | str | None = None,
        max_concurrent_sessions: int | None = None,
        ready_sessions: int | None = None,
        cooldown_period_seconds: float | None = None,
        max_execution_seconds: float | None = None,
        egress: bool | None = None,
        egress_allowlist: Sequence[str] | None = None,
        sandbox: SandboxMode | str | None = None,
        tls: bool = False,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        allow_remote: bool = False,
        pool_name: str | None = None,
        root_dir: str | Path | None = None,
        middlewares: Sequence[Middleware] = (),
        faults: FaultInjector | str | None = None,
        max_upload_bytes: int | None = None,
        max_json_bytes: int | None = None,
        kernel_launcher: KernelLauncherKind | str | None = None,
        mcp: bool | None = None,
        wire_extensions: bool | None = None,
        config: PoolConfig | None = None,
        mcp_api_key: str | None = None,
        management_plane: bool = False,
        serve_at_root: bool = False,
    ) -> None:
        """Configure the pool; nothing starts until :meth:`start` (or ``async with``).

        The pool options (``pool_type`` to ``kernel_launcher``) make one :class:`~.config.PoolConfig`;
        an option left out (``None``) takes that field's default. Pass ``config=`` instead to give
        that value directly (then leave those options out).
        ``faults`` takes a ``FaultInjector`` or a plan string (``"429=0.5,seed=7"``, parsed at once:
        a bad plan raises ``FaultPlanError``, another type ``TypeError``): its middleware runs
        inside authentication and it is given the session deleter its ``expire`` fault needs.
        ``middlewares`` run outside authentication (they see refused calls too).
        ``max_upload_bytes`` (default 128 MiB) and ``max_json_bytes`` (default 64 MiB) bound
        request bodies; above them the pool answers 413.
        ``kernel_launcher`` is ``"fork"`` by default: kernels are forked from a template process
        that imported NumPy, pandas and matplotlib once (same sandbox, ~15 MiB per idle kernel
        instead of ~90); ``"plain"`` starts a fresh interpreter per kernel.
        ``egress_allowlist`` (a local extension, off by default) lets sessions of a pool without
        ``egress`` reach those hosts (names or ``*.domain`` patterns) over HTTP/HTTPS through the
        server's egress proxy, and nothing else (needs bubblewrap; see README, "Network egress").
        ``mcp=True`` serves the pool's MCP server at :attr:`mcp_endpoint`, authenticated with
        :attr:`mcp_api_key` in ``x-ms-apikey``: a key of its own (``mcp_api_key``, generated unless
        given), which, like ``api_key``, is not part of the configuration. ``wire_extensions=True``
        adds the execution-result fields Azure does not send (``stdoutTruncated``,
        ``stderrTruncated``, ``images`` after the first).
        ``management_plane=True`` also serves ``Microsoft.App/sessionPools`` (ARM) at
        :attr:`base_url`; pools made there start from this pool's configuration.
        ``serve_at_root=True`` also answers data-plane calls at :attr:`base_url` itself (off, the
        root is a 404 naming :attr:`endpoint`, as Azure's would be).
        """
        given: dict[str, Any] = {
            name: value
            for name, value in {
                "pool_type": pool_type,
                "pool_name": pool_name,
                "max_concurrent_sessions": max_concurrent_sessions,
                "ready_sessions": ready_sessions,
                "cooldown_period_seconds": cooldown_period_seconds,
                "max_execution_seconds": max_execution_seconds,
                "egress": egress,
                "egress_allowlist": tuple(egress_allowlist) if egress_allowlist is not None else None,
                "sandbox": sandbox,
                "kernel_launcher": kernel_launcher,
                "max_upload_bytes": max_upload_bytes,
                "max_json_bytes": max_json_bytes,
                "mcp": mcp,
                "wire_extensions": wire_extensions,
            }.items()
            if value is not None
        }
        if config is not None and given:
            raise ValueError("pass either config= or the pool options it holds, not both")
        # PoolConfig holds every default and parses each value once.
        options = config if config is not None else PoolConfig(**given)
        injector = _fault_injector(faults)
        super().__init__(
            host=host,
            port=port,
            api_key=api_key,
            tls=tls,
            tls_cert=tls_cert,
            tls_key=tls_key,
            allow_remote=allow_remote,
            root_dir=root_dir,
            management_plane=management_plane,
            pool_defaults=options,
            serve_at_root=serve_at_root,
        )
        self._initial = options
        # The injector's middleware goes inside authentication (create_app places it), even
        # when a caller also listed it among the outer middlewares.
        outer = tuple(m for m in middlewares if injector is None or m != injector.middleware)
        self._frontends = PoolFrontends(faults=injector, middlewares=outer)
        self._fault_plan = faults if isinstance(faults, str) else None
        self._mcp_key = McpKey(mcp_api_key)

    # ------------------------------------------------------------------ the pool

    @property
    def pool(self) -> HostedPool:
        """The pool this object hosts (once started)."""
        if self._default is None:
            raise RuntimeError("The local session pool is not started")
        return self._default

    @property
    def config(self) -> PoolConfig:
        """The pool's configuration: as given, and as changed since (ARM PATCH, MCP switched)."""
        return self._default.config if self._default is not None else self._initial

    @property
    def pool_type(self) -> PoolType:
        """``PythonLTS`` or ``Shell``."""
        return self.config.pool_type

    @property
    def pool_name(self) -> str:
        """The pool name in the endpoint path."""
        return self.config.pool_name

    @property
    def max_concurrent_sessions(self) -> int:
        """Most sessions at once; a call that would create one more gets 404."""
        return self.config.max_concurrent_sessions

    @property
    def ready_sessions(self) -> int:
        """Warm, unallocated sessions kept ready."""
        return self.config.ready_sessions

    @property
    def cooldown_period_seconds(self) -> float:
        """Idle time after which a session is deleted."""
        return self.config.cooldown_period_seconds

    @property
    def max_execution_seconds(self) -> float:
        """Longest execution; larger ``timeoutInSeconds`` values are clamped to it."""
        return self.config.max_execution_seconds

    @property
    def egress(self) -> bool:
        """Whether session code may reach the network."""
        return self.config.egress

    @property
    def sandbox(self) -> SandboxMode:
        """The sandbox asked for (``auto``, ``bwrap`` or ``none``); see :attr:`isolation`."""
        return self.config.sandbox

    @property
    def kernel_launcher(self) -> KernelLauncherKind:
        """How kernels start: ``plain`` (a fresh interpreter each) or ``fork`` (from a template)."""
        return self.config.kernel_launcher

    @property
    def wire_extensions(self) -> bool:
        """Whether execution results carry the fields Azure does not send (off by default)."""
        return self.config.wire_extensions

    # ------------------------------------------------------------------ MCP server

    @property
    def mcp_enabled(self) -> bool:
        """Whether the pool serves its MCP server at :attr:`mcp_endpoint` (``config.mcp`` at first;
        :meth:`enable_mcp`, :meth:`disable_mcp` and an ARM PATCH change it)."""
        return self.config.mcp

    def _require_mcp(self) -> None:
        if not self.mcp_enabled:
            raise RuntimeError(
                "The pool's MCP server is not enabled: pass LocalSessionPool(mcp=True) or call enable_mcp()"
            )

    @property
    def mcp_endpoint(self) -> str:
        """``{endpoint}/mcp``: the MCP server's URL (Azure's ``mcpServerSettings.mcpServerEndpoint``)."""
        self._require_mcp()
        return f"{self.endpoint}/mcp"

    @property
    def mcp_api_key(self) -> str:
        """The key MCP clients send in ``x-ms-apikey`` (not the bearer :attr:`api_key`;
        ``fetchMcpServerCredentials``)."""
        self._require_mcp()
        return self._mcp_key.value

    @property
    def mcp_server(self) -> McpServer | None:
        """The pool's MCP server while it is enabled and the pool runs."""
        return self._default.mcp_server if self._default is not None else None

    def rotate_mcp_api_key(self, new_key: str | None = None) -> str:
        """Replace the MCP API key (a random one unless given) and return it; the old one stops working
        at once (``rotateMcpServerCredentials``)."""
        self._require_mcp()
        return self._mcp_key.rotate(new_key)

    def enable_mcp(self, api_key: str | None = None) -> str:
        """Serve the MCP server from now on (also on a running pool) and return its key.

        ``api_key`` replaces the key when given; otherwise the pool's key is kept (generated once).
        """
        if api_key:
            self._mcp_key.rotate(api_key)
        self._set_mcp(True)
        return self._mcp_key.value

    def disable_mcp(self) -> None:
        """Stop serving the MCP server: ``/mcp`` becomes an unknown data-plane path again."""
        self._set_mcp(False)

    def _set_mcp(self, enabled: bool) -> None:
        if self._default is not None:
            self._default.set_mcp_enabled(enabled)
        else:
            self._initial = dataclasses.replace(self._initial, mcp=enabled)

    # ------------------------------------------------------------------ properties

    @property
    def manager(self) -> SessionManager:
        """The session runtime; available once started."""
        manager = self._default.manager if self._default is not None else None
        if manager is None:
            raise RuntimeError("The local session pool is not started")
        return manager

    @property
    def host(self) -> str:
        """The address the pool listens on."""
        return self._host

    @property
    def endpoint(self) -> str:
        """The pool management endpoint, shaped like Azure's ``poolManagementEndpoint``."""
        return (
            f"{self.base_url}/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/{LOCAL_RESOURCE_GROUP}"
            f"/sessionPools/{self.pool_name}"
        )

    @property
    def isolation(self) -> Isolation:
        """The isolation actually in force: ``bwrap`` or ``none``."""
        return self.manager.isolation

    @property
    def faults(self) -> FaultInjector | None:
        """The fault injector of the pool's data plane, if any."""
        return self._frontends.faults

    def describe(self) -> HostDescription:
        """What this running pool serves and how to reach it (the ``serve`` banner's facts)."""
        return HostDescription(
            endpoint=self.endpoint,
            api_key=self.api_key,
            isolation=self.isolation,
            pool_type=self.pool_type,
            egress=self.egress,
            base_url=self.base_url,
            tls_ca_file=self.tls_ca_file,
            mcp=McpAccess(self.mcp_endpoint, self.mcp_api_key) if self.mcp_enabled else None,
            fault_plan=self._fault_plan
            if self._fault_plan is not None or self.faults is None
            else repr(self.faults.plan),
            management_plane=self.management_plane,
            serves_root=self.serve_at_root,
            egress_allowlist=self.config.egress_allowlist,
        )

    # ------------------------------------------------------------------ lifecycle

    async def _start(self) -> None:
        """Start the server, then the pool's runtime (warm sessions, reaper) and frontends."""
        await super()._start()
        await self.add_pool(self._initial, default=True, mcp_key=self._mcp_key, frontends=self._frontends)
        logger.info(
            "local session pool %s serving at %s (isolation %s)",
            self.pool_name,
            self.endpoint,
            self.isolation,
        )

    async def wait_ready(self) -> None:
        """Return once the pool is ready: a session kernel is started and free, so a new session's
        first call waits for no kernel start (at once for a Shell pool or ``ready_sessions=0``).

        ``async with LocalSessionPool()`` (and :meth:`start`) returns earlier, as soon as the pool
        answers HTTP; a call made before it is ready is answered once its kernel has started.
        """
        await self.manager.wait_first_ready()

    def __repr__(self) -> str:
        where = self.endpoint if self._bound_port is not None else "not started"
        return f"LocalSessionPool({self.pool_name!r}, {self.pool_type}, {where})"
