"""``LocalSessionPool``: the dynamic-sessions data plane on loopback, one Jupyter kernel per session.

::

    async with LocalSessionPool() as pool:
        client = SessionsClient(pool.endpoint, pool.async_credential)
        ...

The pool binds ``127.0.0.1`` on a free port by default and refuses a non-loopback address unless
``allow_remote=True`` (session code runs with real interpreters: do not expose it casually).
Every request needs ``Authorization: Bearer <api_key>``; :attr:`credential` and
:attr:`async_credential` hand that key to azure-core style clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import shutil
import socket
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import DEFAULT_MAX_JSON_BYTES, SessionManagerLike, create_app
from .auth import AsyncStaticKeyCredential, StaticKeyCredential
from .files import DEFAULT_MAX_UPLOAD_BYTES
from .mcp.keys import McpKey
from .tls import client_ssl_context, generate_self_signed, server_ssl_context

__all__ = [
    "LOCAL_RESOURCE_GROUP",
    "LOCAL_SUBSCRIPTION",
    "LocalSessionPool",
    "generate_api_key",
    "is_loopback_host",
]

logger = logging.getLogger("autogen_aca_sessions.local")

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
"""The subscription id in the endpoint path (the local pool has none; Azure's shape is kept)."""

LOCAL_RESOURCE_GROUP = "local"
"""The resource group in the endpoint path."""


def generate_api_key() -> str:
    """A random bearer key that never starts with ``-`` (``--api-key KEY`` would read it as an option)."""
    while True:
        key = secrets.token_urlsafe(32)
        if not key.startswith("-"):
            return key


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name may resolve to anything


class LocalSessionPool:
    """A local session pool serving the Azure dynamic-sessions REST API for every api-version."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        pool_type: str = "PythonLTS",
        max_concurrent_sessions: int = 100,
        ready_sessions: int = 2,
        cooldown_period_seconds: float = 300,
        max_execution_seconds: float = 220,
        egress: bool = False,
        sandbox: str = "auto",
        tls: bool = False,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        allow_remote: bool = False,
        pool_name: str = "local-pool",
        root_dir: str | Path | None = None,
        middlewares: Sequence[Any] = (),
        faults: Any = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        kernel_launcher: str = "plain",
        mcp: bool = False,
        mcp_api_key: str | None = None,
        wire_extensions: bool = False,
    ) -> None:
        """Configure the pool; nothing starts until :meth:`start` (or ``async with``).

        ``faults`` takes a ``FaultInjector``: its middleware is installed and it is given the
        session deleter its ``expire`` fault needs. ``max_upload_bytes`` (default 128 MiB) and
        ``max_json_bytes`` (default 64 MiB) bound request bodies; above them the pool answers 413.
        ``kernel_launcher="fork"`` forks kernels from a template process that imported NumPy,
        pandas and matplotlib once (same sandbox, ~15 MiB per idle kernel instead of ~100).
        ``mcp=True`` serves the pool's MCP server at :attr:`mcp_endpoint`, authenticated with
        :attr:`mcp_api_key` in ``x-ms-apikey`` (a key of its own, generated unless given).
        ``wire_extensions=True`` adds the execution-result fields Azure does not send
        (``stdoutTruncated``, ``stderrTruncated``, ``images`` after the first).
        """
        if kernel_launcher not in ("plain", "fork"):
            raise ValueError(f"kernel_launcher must be 'plain' or 'fork', not {kernel_launcher!r}")
        if not is_loopback_host(host) and not allow_remote:
            raise ValueError(
                f"Refusing to bind the local session pool to {host!r}, which is not a loopback address: "
                "anyone who can reach it and knows the key can run code on this machine. "
                "Pass allow_remote=True to do it anyway."
            )
        if pool_type.lower() not in ("pythonlts", "shell"):
            raise ValueError(f"pool_type must be 'PythonLTS' or 'Shell', not {pool_type!r}")
        if not pool_name or any(c in pool_name for c in "/?#% ") or not pool_name.isascii():
            raise ValueError(
                f"pool_name must be a plain ASCII name without '/', '?', '#', '%' or spaces: {pool_name!r}"
            )
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if max_execution_seconds < 1:
            raise ValueError("max_execution_seconds must be at least 1")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {port}")
        self._host = host
        self._port = port
        self.api_key: str = api_key if api_key else generate_api_key()
        """The bearer key every request must carry (generated when not given)."""
        self.pool_type = "Shell" if pool_type.lower() == "shell" else "PythonLTS"
        """``PythonLTS`` or ``Shell``."""
        self.pool_name = pool_name
        """The pool name in the endpoint path."""
        self.max_concurrent_sessions = max_concurrent_sessions
        """Most sessions at once; a call that would create one more gets 404."""
        self.ready_sessions = ready_sessions
        """Warm, unallocated sessions kept ready."""
        self.cooldown_period_seconds = cooldown_period_seconds
        """Idle time after which a session is deleted."""
        self.max_execution_seconds = max_execution_seconds
        """Longest execution; larger ``timeoutInSeconds`` values are clamped to it."""
        self.egress = egress
        """Whether session code may reach the network."""
        self.sandbox = sandbox
        """The sandbox asked for (``auto``, ``bwrap`` or ``none``); see :attr:`isolation`."""
        self.tls = tls or tls_cert is not None
        """Whether the pool serves HTTPS."""
        self._tls_cert = Path(tls_cert) if tls_cert is not None else None
        self._tls_key = Path(tls_key) if tls_key is not None else None
        self._root_dir = Path(root_dir) if root_dir is not None else None
        self._middlewares = list(middlewares)
        self._faults = faults
        if faults is not None and getattr(faults, "middleware", None) not in self._middlewares:
            self._middlewares.append(faults.middleware)
        self._max_upload_bytes = max_upload_bytes
        self._max_json_bytes = max_json_bytes
        self.kernel_launcher = kernel_launcher
        """How kernels start: ``plain`` (a fresh interpreter each) or ``fork`` (from a template)."""
        self._launcher: Any = None
        self._mcp_enabled = mcp
        self._mcp_key = McpKey(mcp_api_key)
        self._mcp_server: Any = None
        self.wire_extensions = wire_extensions
        """Whether execution results carry the fields Azure does not send (off by default)."""
        self.credential = StaticKeyCredential(self.api_key)
        """A synchronous azure-core ``TokenCredential`` yielding :attr:`api_key`."""
        self.async_credential = AsyncStaticKeyCredential(self.api_key)
        """An azure-core ``AsyncTokenCredential`` yielding :attr:`api_key`."""
        self.tls_cert_path: Path | None = None
        """The PEM certificate clients must trust (set by :meth:`start` when TLS is on)."""
        self._manager: Any = None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._root: Path | None = None
        self._owns_root = False
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ properties

    @property
    def manager(self) -> SessionManagerLike:
        """The session runtime (``SessionManager``); available once started."""
        if self._manager is None:
            raise RuntimeError("The local session pool is not started")
        manager: SessionManagerLike = self._manager
        return manager

    @property
    def port(self) -> int:
        """The port actually bound (available once started)."""
        if self._bound_port is None:
            raise RuntimeError("The local session pool is not started")
        return self._bound_port

    @property
    def host(self) -> str:
        """The address the pool listens on."""
        return self._host

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` of the server (no path)."""
        scheme = "https" if self.tls else "http"
        host = self._host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"  # a wildcard bind is reachable on loopback
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The pool management endpoint, shaped like Azure's ``poolManagementEndpoint``."""
        return (
            f"{self.base_url}/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/{LOCAL_RESOURCE_GROUP}"
            f"/sessionPools/{self.pool_name}"
        )

    @property
    def mcp_enabled(self) -> bool:
        """Whether the pool serves its MCP server at :attr:`mcp_endpoint`."""
        return self._mcp_enabled

    def _require_mcp(self) -> None:
        if not self._mcp_enabled:
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
        self._mcp_enabled = True
        if self._mcp_server is not None:
            self._mcp_server.enabled = True
        return self._mcp_key.value

    def disable_mcp(self) -> None:
        """Stop serving the MCP server: ``/mcp`` becomes an unknown data-plane path again."""
        self._mcp_enabled = False
        if self._mcp_server is not None:
            self._mcp_server.enabled = False

    @property
    def isolation(self) -> str:
        """The isolation actually in force: ``bwrap`` or ``none``."""
        return str(self.manager.isolation)

    @property
    def tls_ca_file(self) -> Path | None:
        """Same as :attr:`tls_cert_path` (the file to pass as ``cafile`` / ``--cacert``)."""
        return self.tls_cert_path

    @property
    def root_dir(self) -> Path:
        """The directory holding the pool's sessions and private files."""
        if self._root is None:
            raise RuntimeError("The local session pool is not started")
        return self._root

    def ssl_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` trusting the pool's certificate (for aiohttp, httpx, urllib)."""
        if self.tls_cert_path is None:
            raise RuntimeError("The pool does not serve TLS (pass tls=True) or is not started")
        return client_ssl_context(self.tls_cert_path)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the runtime (warm sessions, reaper) and the HTTP server."""
        if self._started:
            raise RuntimeError("The local session pool was already started")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        from .sessions import SessionManager  # the runtime needs the 'local' extra

        if self._root_dir is not None:
            self._root = self._root_dir
            await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)
        else:
            self._root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="aca-local-pool-"))
            self._owns_root = True
        private = self._root / "pool"
        await asyncio.to_thread(private.mkdir, mode=0o700, parents=True, exist_ok=True)
        server_context: ssl.SSLContext | None = None
        if self.tls:
            if self._tls_cert is not None and self._tls_key is not None:
                cert, key = self._tls_cert, self._tls_key
            else:
                extra = (
                    () if is_loopback_host(self._host) or self._host in ("0.0.0.0", "::") else (self._host,)
                )
                cert, key = await asyncio.to_thread(generate_self_signed, private / "tls", hosts=extra)
            self.tls_cert_path = cert
            server_context = await asyncio.to_thread(server_ssl_context, cert, key)
        if self.kernel_launcher == "fork" and self.pool_type == "PythonLTS":
            from ._kernel_template_launcher import TemplateKernelLauncher

            self._launcher = TemplateKernelLauncher(
                sandbox=self.sandbox, egress=self.egress, hide_paths=[self._root]
            )
        self._manager = SessionManager(
            root=self._root,
            pool_type=self.pool_type,
            max_concurrent_sessions=self.max_concurrent_sessions,
            ready_sessions=self.ready_sessions,
            cooldown_period_seconds=self.cooldown_period_seconds,
            max_execution_seconds=self.max_execution_seconds,
            egress=self.egress,
            sandbox=self.sandbox,
            launcher=self._launcher,
        )
        await self._manager.start()
        if self._faults is not None and hasattr(self._faults, "bind_session_deleter"):
            self._faults.bind_session_deleter(self._manager.delete)
        from .mcp.server import McpServer  # needs mcp-types (the 'local' extra)

        # Built even when off, so that enable_mcp() can turn it on for a running pool (ARM's
        # mcpServerSettings may change after the pool was created).
        self._mcp_server = McpServer(
            self._manager,
            enabled=self._mcp_enabled,
            key=self._mcp_key,
            shell_pool=self.pool_type == "Shell",
            max_execution_seconds=self.max_execution_seconds,
            cooldown_seconds=self.cooldown_period_seconds,
            max_environments=max(1000, 10 * self.max_concurrent_sessions),
        )
        app = create_app(
            self._manager,
            api_key=self.api_key,
            pool_type=self.pool_type,
            max_execution_seconds=self.max_execution_seconds,
            pool_name=self.pool_name,
            max_upload_bytes=self._max_upload_bytes,
            max_json_bytes=self._max_json_bytes,
            middlewares=self._middlewares,
            mcp=self._mcp_server,
            wire_extensions=self.wire_extensions,
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        sock = self._bind()
        site = web.SockSite(self._runner, sock, ssl_context=server_context)
        await site.start()
        self._bound_port = int(sock.getsockname()[1])
        logger.info(
            "local session pool %s serving at %s (isolation %s)",
            self.pool_name,
            self.endpoint,
            self.isolation,
        )

    def _bind(self) -> socket.socket:
        host = self._host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host.lower() == "localhost":
            host, family = "127.0.0.1", socket.AF_INET
        sock = socket.create_server((host, self._port), family=family)
        sock.setblocking(False)
        return sock

    async def close(self) -> None:
        """Stop serving, kill every kernel and remove every directory the pool made. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        if self._manager is not None:
            try:
                await self._manager.close()
            except Exception:
                logger.exception("closing the session manager failed")
        if self._launcher is not None:
            try:
                await self._launcher.close()
            except Exception:
                logger.exception("closing the kernel template failed")
        if self._owns_root and self._root is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, True)

    async def serve_forever(self) -> None:
        """Start when needed and serve until cancelled; then close."""
        if not self._started:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def __aenter__(self) -> LocalSessionPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = self.endpoint if self._bound_port is not None else "not started"
        return f"LocalSessionPool({self.pool_name!r}, {self.pool_type}, {where})"
