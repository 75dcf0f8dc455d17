"""The listener: check the bind options, make the working directory, the TLS context, the
socket and the base URL, and start and stop.

:class:`LocalListener` is the base of ``LocalSessionsServer`` (and so of ``LocalSessionPool``,
the server with a pool of its own); these functions are that listener, written once.
"""

from __future__ import annotations

import abc
import asyncio
import socket
import ssl
import tempfile
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar

from aiohttp import web

from ..address import WILDCARD_HOSTS, is_loopback_host
from ..frontends.auth import AsyncStaticKeyCredential, StaticKeyCredential, generate_api_key
from ..frontends.protocol_log import protocol_logger
from .tls import client_ssl_context, generate_self_signed, server_ssl_context

__all__ = ["LocalListener", "base_url", "check_bind_options", "make_root", "serve", "tls_server_context"]


def check_bind_options(
    what: str,
    *,
    host: str,
    port: int,
    tls_cert: str | Path | None,
    tls_key: str | Path | None,
    allow_remote: bool,
) -> None:
    """Raise ``ValueError`` for a bind the caller did not mean (``what`` names the server)."""
    if not is_loopback_host(host) and not allow_remote:
        raise ValueError(
            f"Refusing to bind the {what} to {host!r}, which is not a loopback address: "
            "anyone who can reach it and knows the key can run code on this machine. "
            "Pass allow_remote=True to do it anyway."
        )
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key must be given together")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {port}")


def base_url(host: str, port: int, *, tls: bool) -> str:
    """``scheme://host:port`` for a server bound to ``host`` (a wildcard bind is reached on loopback)."""
    scheme = "https" if tls else "http"
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


async def make_root(root_dir: Path | None, *, prefix: str) -> tuple[Path, bool]:
    """The working directory (``root_dir``, made when missing, or a new temporary one) and whether
    the caller owns it (must remove it on close)."""
    if root_dir is not None:
        await asyncio.to_thread(root_dir.mkdir, parents=True, exist_ok=True)
        return root_dir, False
    return Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix)), True


async def tls_server_context(
    host: str, directory: Path, cert: Path | None, key: Path | None
) -> tuple[Path, ssl.SSLContext]:
    """The certificate clients must trust and the server context: from ``cert``/``key`` when
    given, else a self-signed pair written into ``directory`` (naming ``host`` too when it is
    neither loopback nor a wildcard)."""
    if cert is not None and key is not None:
        pair = (cert, key)
    else:
        extra = () if is_loopback_host(host) or host in WILDCARD_HOSTS else (host,)
        pair = await asyncio.to_thread(generate_self_signed, directory, hosts=extra)
    return pair[0], await asyncio.to_thread(server_ssl_context, *pair)


def _bind(host: str, port: int) -> socket.socket:
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host.lower() == "localhost":
        host, family = "127.0.0.1", socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    sock.setblocking(False)
    return sock


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port``; returns the runner (``cleanup()`` stops it) and the port bound."""
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=5.0, logger=protocol_logger()
    )
    await runner.setup()
    try:
        sock = _bind(host, port)
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(sock.getsockname()[1])


_L = TypeVar("_L", bound="LocalListener")


class LocalListener(abc.ABC):
    """What a server listens with: the address, key and TLS it serves with, its working
    directory, and its lifecycle (start once, a failed start closes again, serve
    until cancelled, ``async with``)."""

    _what: ClassVar[str]
    """What the object is, for its errors (``"local session pool"``)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        api_key: str | None,
        tls: bool,
        tls_cert: str | Path | None,
        tls_key: str | Path | None,
        allow_remote: bool,
        root_dir: str | Path | None,
    ) -> None:
        check_bind_options(
            self._what, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, allow_remote=allow_remote
        )
        self._host = host
        self._port = port
        self.api_key: str = api_key if api_key else generate_api_key()
        """The bearer key every request must carry (generated when not given)."""
        self.tls = tls or tls_cert is not None
        """Whether HTTPS is served."""
        self._tls_cert = Path(tls_cert) if tls_cert is not None else None
        self._tls_key = Path(tls_key) if tls_key is not None else None
        self._root_dir = Path(root_dir) if root_dir is not None else None
        self.credential = StaticKeyCredential(self.api_key)
        """A synchronous azure-core ``TokenCredential`` yielding :attr:`api_key` (for
        ``SessionsClient`` and ``ContainerAppsAPIClient``)."""
        self.async_credential = AsyncStaticKeyCredential(self.api_key)
        """An azure-core ``AsyncTokenCredential`` yielding :attr:`api_key`."""
        self.tls_cert_path: Path | None = None
        """The PEM certificate clients must trust (set by :meth:`start` when TLS is on)."""
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._root: Path | None = None
        self._owns_root = False
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ address

    @property
    def port(self) -> int:
        """The port actually bound (available once started)."""
        if self._bound_port is None:
            raise RuntimeError(f"The {self._what} is not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` (no path); on the multi-pool server, the ARM base URL
        (``ContainerAppsAPIClient(base_url=...)``)."""
        return base_url(self._host, self.port, tls=self.tls)

    @property
    def tls_ca_file(self) -> Path | None:
        """Same as :attr:`tls_cert_path`: the file to trust (``cafile``, ``connection_verify=``,
        ``--cacert``); None without TLS."""
        return self.tls_cert_path

    def ssl_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` trusting the certificate served (for aiohttp, httpx, urllib)."""
        if self.tls_cert_path is None:
            raise RuntimeError(f"The {self._what} does not serve TLS (pass tls=True) or is not started")
        return client_ssl_context(self.tls_cert_path)

    @property
    def root_dir(self) -> Path:
        """The directory holding everything it made (sessions, private files; once started)."""
        if self._root is None:
            raise RuntimeError(f"The {self._what} is not started")
        return self._root

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving; a start that fails closes whatever it had started."""
        if self._started:
            raise RuntimeError(f"The {self._what} was already started")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    @abc.abstractmethod
    async def _start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop serving and remove what :meth:`start` made. Idempotent."""

    async def serve_forever(self) -> None:
        """Start when needed and serve until cancelled; then close."""
        if not self._started:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def __aenter__(self: _L) -> _L:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
