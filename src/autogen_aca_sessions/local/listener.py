"""What a local pool and the multi-pool server do alike to listen: check the bind options, make
the working directory, the TLS context, the socket and the base URL.

``LocalSessionPool`` and ``LocalSessionsServer`` serve different applications on the same kind of
listener; these functions are that listener, written once.
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

from .address import WILDCARD_HOSTS, is_loopback_host
from .tls import generate_self_signed, server_ssl_context

__all__ = ["Lifecycle", "base_url", "check_bind_options", "make_root", "serve", "tls_server_context"]


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
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        sock = _bind(host, port)
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(sock.getsockname()[1])


_L = TypeVar("_L", bound="Lifecycle")


class Lifecycle(abc.ABC):
    """Start once (a failed start closes again), serve until cancelled, ``async with``."""

    _what: ClassVar[str]
    """What the object is, for its errors (``"local session pool"``)."""
    _started: bool
    _closed: bool

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
