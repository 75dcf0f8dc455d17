"""A sandbox command's output while it runs: the client side of ``GET {s}/exec/stream``.

The frame protocol is the local server's (docs/design.md, "exec/stream"; the spec names the
WebSocket but documents no frames). The client offers the subprotocol
:data:`STREAM_SUBPROTOCOL` and sends the command only when the server selected it, so a server
that answers the upgrade with another protocol (real Azure's framing is undocumented) is never
sent a command it could misread: :class:`StreamNotServed`, and the caller runs the command
through ``executeShellCommand`` instead.

A command is never sent twice: every failure before the command frame went out means nothing
ran; every failure after it is :class:`~.errors.RequestMayHaveRunError` (or the server's error
frame), never a retry.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from autogen_aca_sessions.client._http_errors import http_error
from autogen_aca_sessions.client._retry import RetryPolicy, parse_retry_after
from autogen_aca_sessions.client.aiohttp_transport import AiohttpTransport
from autogen_aca_sessions.client.auth import RequestAuthorization, TokenProvider
from autogen_aca_sessions.client.clock import Clock
from autogen_aca_sessions.client.contracts import Request, Service
from autogen_aca_sessions.client.errors import (
    RequestMayHaveRunError,
    RequestNotSentError,
    SessionsError,
    error_class_for_status,
)

__all__ = [
    "STREAM_SUBPROTOCOL",
    "OutputCallback",
    "OutputChunk",
    "OutputStream",
    "StreamNotServed",
    "StreamedCommand",
    "deliver",
    "open_stream",
    "run_streamed",
]

STREAM_SUBPROTOCOL = "aca-exec-stream.v1"
"""The WebSocket subprotocol of the frame protocol (the local server selects it)."""

NOT_SERVED_STATUSES = frozenset({404, 405, 501})
"""Handshake answers that mean "no stream here" (the caller falls back; nothing ran)."""

SANDBOX_NOT_FOUND = "SandboxNotFound"
"""The error code of a 404 about the sandbox itself (raised as such, not taken as "no stream")."""

_KEPT_CHARS = 16 * 1024 * 1024
"""Most characters of each stream kept for the result (the callback still gets everything)."""

_HEARTBEAT_SECONDS = 30.0


class OutputStream(enum.Enum):
    """Which stream a piece of output came from."""

    STDOUT = "stdout"
    """Standard output."""
    STDERR = "stderr"
    """Standard error."""


@dataclass(frozen=True)
class OutputChunk:
    """A piece of a running command's output, as it arrived."""

    stream: OutputStream
    """stdout or stderr."""
    text: str
    """The text (UTF-8 decoded by the server; bytes that were not UTF-8 are U+FFFD)."""


OutputCallback = Callable[[OutputChunk], Awaitable[None] | None]
"""Called with each chunk while the command runs; a plain function or a coroutine function."""


async def deliver(on_output: OutputCallback, chunk: OutputChunk) -> None:
    """Call ``on_output`` (awaiting it when it is a coroutine function)."""
    outcome = on_output(chunk)
    if inspect.isawaitable(outcome):
        await outcome


class StreamNotServed(Exception):
    """The server does not serve this stream protocol here (nothing was sent)."""

    def __init__(self, reason: str, *, lasting: bool = True) -> None:
        super().__init__(reason)
        self.lasting = lasting
        """Whether it says so for every sandbox (405, 501, another subprotocol), not only for
        this path (a 404 may be a gateway's, or about the sandbox)."""


@dataclass
class StreamedCommand:
    """What a streamed command ended with."""

    exit_code: int = -1
    """Its exit code."""
    stdout: str = ""
    """Its standard output (the chunks joined, up to the kept length)."""
    stderr: str = ""
    """Its standard error, likewise."""
    timed_out: bool = False
    """Whether its timeout ended it."""
    truncated: bool = False
    """Whether output was cut (by the server's cap, or past the kept length here)."""
    duration_ms: int = 0
    """How long it ran, as the server measured."""
    _parts: dict[OutputStream, list[str]] = field(default_factory=dict, repr=False)
    _kept: dict[OutputStream, int] = field(default_factory=dict, repr=False)

    def add(self, chunk: OutputChunk) -> None:
        """Keep a chunk's text (up to the kept length per stream)."""
        kept = self._kept.get(chunk.stream, 0)
        text = chunk.text[: max(_KEPT_CHARS - kept, 0)]
        if len(text) < len(chunk.text):
            self.truncated = True
        self._kept[chunk.stream] = kept + len(text)
        self._parts.setdefault(chunk.stream, []).append(text)

    def close(self, end: Mapping[str, Any]) -> None:
        """Take the exit frame."""
        self.exit_code = int(end.get("exitCode", -1))
        self.timed_out = bool(end.get("timedOut", False))
        self.truncated = self.truncated or bool(end.get("truncated", False))
        self.duration_ms = int(end.get("executionTimeMs") or 0)
        self.stdout = "".join(self._parts.get(OutputStream.STDOUT, []))
        self.stderr = "".join(self._parts.get(OutputStream.STDERR, []))


async def open_stream(
    transport: object,
    url: str,
    tokens: TokenProvider,
    policy: RetryPolicy,
    clock: Clock,
    *,
    user_agent: str,
    timeout: float,
) -> aiohttp.ClientWebSocketResponse[bool]:
    """The upgraded socket, on the transport's aiohttp session, with its bearer token.

    Raises :class:`StreamNotServed` (404/405/501, another subprotocol, a transport that is not
    aiohttp), the status's :class:`~.errors.SessionsHTTPError` (401 after one fresh token, 409
    ``SandboxNotRunning``, ...), :class:`~.errors.RequestNotSentError`. Nothing has run on any
    of them; refusals the retry policy allows (429, 503, no connection) are tried again first.
    """
    if not isinstance(transport, AiohttpTransport):
        raise StreamNotServed("the client's transport cannot carry a WebSocket")
    auth = RequestAuthorization(tokens)
    attempt = 0
    while True:
        headers = {"Authorization": await auth.header(), "User-Agent": user_agent}
        try:
            socket = await asyncio.wait_for(
                transport.websocket(
                    url, headers=headers, protocols=(STREAM_SUBPROTOCOL,), heartbeat=_HEARTBEAT_SECONDS
                ),
                timeout,
            )
        except aiohttp.WSServerHandshakeError as refused:
            answer_headers: Mapping[str, str] = refused.headers or {}
            status = refused.status
            code = answer_headers.get("x-ms-error-code") or ""
            if (
                status in NOT_SERVED_STATUSES and code.lower() != SANDBOX_NOT_FOUND.lower()
            ) or 200 <= status < 400:
                lasting = status != 404
                raise StreamNotServed(f"the upgrade was answered {status}", lasting=lasting) from refused
            if await auth.retry_after_rejection(status, answer_headers):
                continue
            if not policy.retries_status(status, idempotent=True) or attempt >= policy.max_retries:
                raise http_error(
                    Request("GET", "exec/stream", per_session=False, service=Service.SANDBOXES),
                    url,
                    status,
                    answer_headers,
                    b"",
                    attempt,
                    fresh_token_tried=auth.fresh_token_tried,
                ) from refused
            delay = policy.delay(attempt, parse_retry_after(answer_headers), clock.uniform)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if attempt >= policy.max_retries:
                raise RequestNotSentError(
                    f"could not open the command stream: {type(exc).__name__}: {exc}", method="GET", url=url
                ) from exc
            delay = policy.delay(attempt, None, clock.uniform)
        else:
            if socket.protocol != STREAM_SUBPROTOCOL:
                await socket.close()
                raise StreamNotServed(f"the server chose the subprotocol {socket.protocol!r}")
            return socket
        attempt += 1
        await clock.sleep(delay)


def _error_from_frame(frame: Mapping[str, Any], url: str) -> SessionsError:
    raw = frame.get("error")
    error: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    status = frame.get("status")
    status = status if isinstance(status, int) and 400 <= status < 600 else 500
    code = str(error.get("code") or "") or None
    said = str(error.get("message") or "")
    return error_class_for_status(status)(
        status,
        f"The command stream ended with an error. Service said: {said[:500]}",
        error_code=code,
        body=json.dumps(frame)[:2000],
        method="GET",
        url=url,
        service_message=said or None,
    )


async def run_streamed(
    socket: aiohttp.ClientWebSocketResponse[bool],
    url: str,
    command: Mapping[str, Any],
    on_output: OutputCallback,
    *,
    wait: float,
) -> StreamedCommand:
    """Send ``command`` and relay its output to ``on_output`` until its exit frame.

    The socket is closed on every way out; a close before the exit frame ends the command on
    the server (its process group is killed), which is what cancelling this, ``on_output``
    raising, or ``wait`` passing do.
    """
    outcome = StreamedCommand()
    try:
        try:
            await socket.send_json(dict(command))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise RequestMayHaveRunError(
                f"The command stream broke while sending the command ({exc}); it may have run.",
                method="GET",
                url=url,
            ) from exc
        try:
            await asyncio.wait_for(_relay(socket, url, outcome, on_output), wait)
        except asyncio.TimeoutError as exc:
            raise SessionsError(
                f"No end of the streamed command within {wait:g} s; the stream was closed, which "
                "ends the command."
            ) from exc
        return outcome
    finally:
        await socket.close()


async def _relay(
    socket: aiohttp.ClientWebSocketResponse[bool],
    url: str,
    outcome: StreamedCommand,
    on_output: OutputCallback,
) -> None:
    async for message in socket:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        try:
            frame = json.loads(message.data)
        except ValueError:
            frame = None
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind in ("stdout", "stderr"):
            assert isinstance(frame, dict)
            chunk = OutputChunk(OutputStream(kind), str(frame.get("data") or ""))
            if chunk.text:
                outcome.add(chunk)
                await deliver(on_output, chunk)
        elif kind == "exit":
            assert isinstance(frame, dict)
            outcome.close(frame)
            return
        elif kind == "error":
            assert isinstance(frame, dict)
            raise _error_from_frame(frame, url)
        else:
            raise RequestMayHaveRunError(
                f"The command stream sent a frame this client does not read ({str(message.data)[:100]}); "
                "the command may have run.",
                method="GET",
                url=url,
            )
    raise RequestMayHaveRunError(
        f"The command stream closed before the command's exit (close code {socket.close_code}); it "
        "may have run in part.",
        method="GET",
        url=url,
    )
