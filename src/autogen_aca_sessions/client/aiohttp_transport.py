"""The default transport: one pooled ``aiohttp.ClientSession``.

It maps aiohttp's exceptions to the three things a server can have seen of an attempt (see
:mod:`autogen_aca_sessions.client.transport`) and nothing more: no retries, no redirects, no
authentication.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from autogen_aca_sessions.client.errors import RequestMayHaveRunError, RequestNotSentError
from autogen_aca_sessions.client.transport import (
    FileUpload,
    ResponseTimeoutError,
    TransportRequest,
    TransportResponse,
)

__all__ = ["AiohttpTransport"]

logger = logging.getLogger(__name__)


class _NeverRaised(Exception):
    """Stands in for an aiohttp exception class this aiohttp version does not have."""


def _connect_timeout_error(module: Any) -> type[BaseException]:
    """aiohttp's "connecting timed out" exception (3.10+). Older versions raise a generic
    ServerTimeoutError for connect and read timeouts alike; a read timeout must never resend an
    execution, so there the connect case falls back to the (non-retried) read-timeout handling."""
    found = getattr(module, "ConnectionTimeoutError", None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return _NeverRaised


_ConnectionTimeoutError = _connect_timeout_error(aiohttp)


def _form(upload: FileUpload) -> aiohttp.FormData:
    # quote_fields=False: the file name goes on the wire as UTF-8 text ("a b.txt"), not
    # percent-encoded ("a%20b.txt"), which a server would otherwise store literally.
    form = aiohttp.FormData(quote_fields=False)
    form.add_field(upload.field, upload.data, filename=upload.filename, content_type=upload.content_type)
    return form


class AiohttpTransport:
    """Sends requests on one ``aiohttp.ClientSession``, created lazily inside the running loop.

    Args:
        session: An ``aiohttp.ClientSession`` to use instead of our own (never closed here).
        ssl: Passed to every request (an ``SSLContext`` for a self-signed local pool, False to
            skip verification); None uses aiohttp's default verification.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        ssl: ssl_module.SSLContext | bool | aiohttp.Fingerprint | None = None,
    ) -> None:
        if ssl is not None and not isinstance(ssl, (ssl_module.SSLContext, bool, aiohttp.Fingerprint)):
            raise TypeError(f"ssl must be an ssl.SSLContext, a bool or None; got {type(ssl).__name__}")
        self._session = session
        self._owns_session = session is None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._ssl = ssl

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The HTTP session in use; None before the first request (or after :meth:`close`)."""
        return self._session

    async def send(self, request: TransportRequest) -> TransportResponse:
        """One HTTP exchange, whatever its status (see
        :class:`~autogen_aca_sessions.client.transport.Transport`)."""
        timeout = aiohttp.ClientTimeout(total=request.timeout, sock_connect=request.connect_timeout)
        data: aiohttp.FormData | bytes | None
        data = _form(request.body) if isinstance(request.body, FileUpload) else request.body
        method, url = request.method, request.url
        try:
            async with self._current_session().request(
                method,
                URL(url, encoded=True),
                headers=dict(request.headers),
                timeout=timeout,
                allow_redirects=False,
                # True is aiohttp's own default: verify with the system's trust store.
                ssl=self._ssl if self._ssl is not None else True,
                data=data,
            ) as resp:
                payload = await resp.read()
                return TransportResponse(resp.status, CIMultiDict(resp.headers), payload)
        except _ConnectionTimeoutError as exc:
            raise RequestNotSentError(f"connection timed out: {exc}", method=method, url=url) from exc
        except aiohttp.ClientSSLError as exc:
            # A TLS failure will not fix itself on a retry.
            raise RequestNotSentError(
                f"TLS error talking to {url}: {exc}. For a local server with a self-signed "
                "certificate (serve --tls) set SSL_CERT_FILE to the certificate it printed, or "
                "pass ssl=<SSLContext trusting it> where the client takes one.",
                method=method,
                url=url,
                retryable=False,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise RequestNotSentError(f"could not connect: {exc}", method=method, url=url) from exc
        except asyncio.TimeoutError as exc:
            raise ResponseTimeoutError(
                f"no answer within {request.timeout:g} s", method=method, url=url
            ) from exc
        except aiohttp.ClientError as exc:
            raise RequestMayHaveRunError(f"{type(exc).__name__}: {exc}", method=method, url=url) from exc

    async def websocket(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        protocols: Sequence[str],
        heartbeat: float | None,
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        """Open a WebSocket on the same HTTP session and TLS settings as :meth:`send` (a
        sandbox's command stream). aiohttp's exceptions are the caller's to map: a refused
        handshake is ``aiohttp.WSServerHandshakeError`` with the status and headers."""
        return await self._current_session().ws_connect(
            URL(url, encoded=True),
            headers=dict(headers),
            protocols=tuple(protocols),
            heartbeat=heartbeat,
            ssl=self._ssl if self._ssl is not None else True,
            decode_text=True,
        )

    def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and self._owns_session and self._session_loop is not loop:
            # Our session is bound to an earlier event loop (e.g. a second asyncio.run()); it
            # cannot serve this one, so start afresh rather than fail.
            logger.debug("Transport used from a new event loop; creating a new HTTP session")
            _abandon(self._session)
            self._session = None
        if self._session is None:
            # Created here, inside the running loop, so it binds to the loop that uses it.
            connector = aiohttp.TCPConnector(limit=100, limit_per_host=50, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector)
            self._session_loop = loop
        return self._session

    async def close(self) -> None:
        """Close the HTTP session if it is ours (a caller's is left open and in use). Idempotent."""
        if not self._owns_session:
            return
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _abandon(session: aiohttp.ClientSession) -> None:
    """Release an HTTP session bound to an earlier event loop without awaiting on it (that loop
    may be closed): close its connections and detach the connector, so neither sockets nor an
    "Unclosed client session" warning are left behind."""
    connector = session.connector
    session.detach()
    if connector is None:
        return
    try:
        # The private, synchronous half of close(): the public one schedules a task on the
        # connector's loop, which may no longer run.
        connector._close()
    except Exception:  # a closed loop refuses to schedule the transports' close callbacks
        logger.debug("Closing connections of an earlier event loop failed", exc_info=True)
