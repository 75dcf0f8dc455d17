"""The client's transport seam: what one HTTP exchange takes and gives back.

Like httpx's ``transport=``: :class:`~autogen_aca_sessions.client.SessionsClient` builds each
attempt as a :class:`TransportRequest` and hands it to a :class:`Transport`, which sends it once
and returns a :class:`TransportResponse` whatever its status. Authentication, retries, deadlines,
tracing and error mapping stay in the client, so a transport is only the wire. The default is
:class:`~autogen_aca_sessions.client.aiohttp_transport.AiohttpTransport`; tests and embedders pass
their own (a recording one, one that fails on purpose, one over another HTTP library).

A transport that gets no HTTP answer says what the server can have seen, by the type it raises:

* :class:`~autogen_aca_sessions.client.errors.RequestNotSentError`: nothing reached the server
  (no connection, connecting timed out; ``retryable=False`` for what a retry cannot fix, such as
  a TLS failure). Safe to send again.
* :class:`ResponseTimeoutError`: sent, and no complete answer within ``TransportRequest.timeout``.
* :class:`~autogen_aca_sessions.client.errors.RequestMayHaveRunError`: sent, and the connection
  broke before the answer.

Raise them ``from`` the library's own exception: the client keeps that as the ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from autogen_aca_sessions.client.errors import RequestMayHaveRunError

__all__ = ["FileUpload", "ResponseTimeoutError", "Transport", "TransportRequest", "TransportResponse"]


@dataclass(frozen=True)
class FileUpload:
    """A ``multipart/form-data`` body of one file part, encoded by the transport."""

    field: str
    """The form field name (``file`` on every api-version today)."""
    filename: str
    """The file name, sent as UTF-8 text in the part's ``Content-Disposition`` (not percent-encoded)."""
    data: bytes
    """The file content."""
    content_type: str = "application/octet-stream"
    """The part's ``Content-Type``."""


@dataclass(frozen=True)
class TransportRequest:
    """One attempt of one request, ready for the wire."""

    method: str
    """HTTP method."""
    url: str
    """Absolute URL, already percent-encoded (send it as it is: never re-encode or normalise it)."""
    headers: Mapping[str, str]
    """Every header to send (authorization, user agent, content type, trace context)."""
    body: bytes | FileUpload | None
    """The body: JSON bytes, one file to upload as multipart, or nothing."""
    timeout: float
    """Seconds for the whole exchange, connecting included."""
    connect_timeout: float
    """Seconds for connecting alone (never more than :attr:`timeout`)."""


@dataclass(frozen=True)
class TransportResponse:
    """The server's complete answer to one attempt, whatever its status."""

    status: int
    """HTTP status code."""
    headers: Mapping[str, str]
    """Response headers, in any letter case (the client looks them up case-insensitively)."""
    body: bytes
    """The whole body."""


class ResponseTimeoutError(RequestMayHaveRunError):
    """The request was sent and no complete answer came within the attempt's timeout: it may be
    running still. Raised by a transport; the client turns it into its own outcome (an execution's
    :class:`~autogen_aca_sessions.client.errors.ExecutionTimeoutError`, a retry of a read, ...)."""


@runtime_checkable
class Transport(Protocol):
    """Sends one HTTP request once. Implementations never retry, follow redirects or
    authenticate: the client does all of that around :meth:`send`."""

    async def send(self, request: TransportRequest) -> TransportResponse:
        """Send ``request`` once and return the answer, whatever its status.

        Raises:
            RequestNotSentError: nothing reached the server.
            ResponseTimeoutError: sent; no complete answer within ``request.timeout``.
            RequestMayHaveRunError: sent; the connection broke before the answer.
        """
        ...
