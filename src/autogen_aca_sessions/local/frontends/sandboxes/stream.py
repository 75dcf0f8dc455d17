"""``GET {s}/exec/stream``: a command's output over a WebSocket, while it runs.

The spec names this WebSocket but no frame protocol (reference section 3.9), so this server
defines a small one (docs/design.md, "exec/stream"). Every frame is a text frame holding one
JSON object.

Handshake: ``GET {s}/exec/stream?api-version=...`` with the same ``Authorization`` as every other
route. A client that offers the subprotocol :data:`SUBPROTOCOL` gets it selected, which tells it
that the server speaks this protocol (a server that does not is never sent a command). Refused
before the upgrade, as ordinary HTTP errors with the usual error body: 401, 400 (api-version,
not a WebSocket request, a ``user`` other than the sandbox's one), 404 (no such sandbox), 409
``SandboxNotRunning`` (nothing ran: resume and connect again).

client -> server, once, first::

    {"command": "make test"}                                   # bash, as executeShellCommand
    {"command": "python3", "args": ["-u", "job.py"]}           # no shell, as executeCommand
    # optional: "workingDirectory", "environment" {name: value}, "timeoutInSeconds"

server -> client, as output comes, then once at the end::

    {"type": "stdout", "data": "<text>"}
    {"type": "stderr", "data": "<text>"}
    {"type": "exit", "exitCode": 0, "executionTimeMs": 12, "timedOut": false, "truncated": false}
    {"type": "error", "status": 400, "error": {"code": "...", "message": "...", "target": "..."}}

then the server closes: code 1000 after ``exit``, ``4000 + status`` (4400, 4409, ...) with the
error code as the reason after ``error``. An ``error`` with status 400 or 409
``SandboxNotRunning`` means the command did not run; a stop of the sandbox while the command ran
is 409 ``ConflictingOperation`` (it ran in part: never send it again).

Output is UTF-8 decoded per stream as it comes (a character split across writes stays whole;
bytes that are not UTF-8 become U+FFFD), kept to the same per-stream cap as
``executeShellCommand``, and the runtime's notes (timeout, truncation, disk quota) come as a last
``stderr`` frame: the ``stdout`` frames joined are what ``executeShellCommand`` answers as
``stdout``, likewise ``stderr``.

A client that goes away before the ``exit`` frame (it closes the socket, or its connection
breaks or stops answering pings) ends the command: its process group is killed, as a terminal
hangup does. Its output has nowhere to go, and closing is how a streaming caller cancels. A
command meant to outlive its caller detaches (``setsid``) or runs through executeShellCommand.
Frames the client sends after the command are ignored.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ...runtime.sandboxes.errors import SandboxError, SandboxNotRunning
from ...runtime.sandboxes.models import CommandResult, OutputChunk, OutputStream, SandboxState
from ...runtime.sandboxes.sandbox import MAX_OUTPUT_BYTES, LocalSandbox
from ..dataplane.wire.errors import WireError
from .call import MAX_JSON_BODY_BYTES, SandboxCall
from .errors import wire_error
from .wire.common import ExecRequest, bad_request, read_exec

__all__ = ["FIRST_MESSAGE_SECONDS", "SUBPROTOCOL", "exec_stream"]

SUBPROTOCOL = "aca-exec-stream.v1"
"""The WebSocket subprotocol naming this frame protocol (selected when the client offers it)."""

FIRST_MESSAGE_SECONDS = 30.0
"""How long the server waits for the command message after the upgrade."""

HEARTBEAT_SECONDS = 30.0
"""Ping interval; a client that does not answer within half of it has gone away."""


def _error_frame(err: WireError) -> dict[str, Any]:
    return {
        "type": "error",
        "status": err.status,
        "error": {"code": err.code, "message": err.message, "target": err.target},
    }


async def _refuse(socket: web.WebSocketResponse, err: WireError) -> None:
    """Send ``err`` as an error frame and close with ``4000 + status`` (reason: its code)."""
    with contextlib.suppress(ConnectionError):
        await socket.send_json(_error_frame(err))
    await socket.close(code=4000 + err.status, message=err.code.encode()[:120])


def _not_running(sandbox: LocalSandbox) -> WireError:
    return wire_error(SandboxNotRunning(sandbox.id, sandbox.state.value))


class _StreamText:
    """One output stream on its way to the client: capped as the runtime caps it, decoded
    incrementally, and, for stderr, the text sent kept (to tell the runtime's notes, which it
    appends to stderr, from the output)."""

    def __init__(self, *, keep: bool) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._room = MAX_OUTPUT_BYTES
        self._keep = keep
        self.sent: list[str] = []

    def note_sent(self, text: str) -> None:
        if self._keep:
            self.sent.append(text)

    def take(self, data: bytes) -> str:
        """The text of ``data`` to send now (empty past the cap, or mid-character)."""
        data = data[: max(self._room, 0)]
        self._room -= len(data)
        return self._decoder.decode(data)

    def tail(self) -> str:
        """What the decoder still holds (an unfinished character, as U+FFFD)."""
        return self._decoder.decode(b"", final=True)


class _Relay:
    """Sends a command's output to the socket while it runs."""

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self._socket = socket
        self._streams = {
            OutputStream.STDOUT: _StreamText(keep=False),
            OutputStream.STDERR: _StreamText(keep=True),
        }

    async def send(self, stream: OutputStream, text: str) -> None:
        if not text:
            return
        self._streams[stream].note_sent(text)
        if not self._socket.closed:
            # The client went away: the watcher cancels the command; until then output is dropped.
            with contextlib.suppress(ConnectionError):
                await self._socket.send_json({"type": stream.value, "data": text})

    async def forward(self, chunk: OutputChunk) -> None:
        """The runtime's ``on_output``: awaited per chunk, so a slow client slows the command
        (the socket's write buffer is bounded) instead of filling the server's memory."""
        await self.send(chunk.stream, self._streams[chunk.stream].take(chunk.data))

    async def finish(self, result: CommandResult) -> None:
        """The decoders' tails, the runtime's notes, then the exit frame."""
        for stream, text in self._streams.items():
            await self.send(stream, text.tail())
        streamed = "".join(self._streams[OutputStream.STDERR].sent)
        if result.stderr.startswith(streamed):
            await self.send(OutputStream.STDERR, result.stderr[len(streamed) :])
        await self._socket.send_json(
            {
                "type": "exit",
                "exitCode": result.exit_code,
                "executionTimeMs": result.duration_ms,
                "timedOut": result.timed_out,
                "truncated": result.truncated,
            }
        )


def _check_query(call: SandboxCall) -> None:
    user = call.query("user")
    if user not in (None, "", "root"):
        raise bad_request("Commands run as the sandbox's one user; leave 'user' out.", "user")
    # containerName: a sandbox has one container; any name means it.


async def _read_command(socket: web.WebSocketResponse) -> ExecRequest | WireError | None:
    """The command message; a refusal to send back; None when the client left first."""
    try:
        message = await asyncio.wait_for(socket.receive(), FIRST_MESSAGE_SECONDS)
    except asyncio.TimeoutError:
        return WireError(
            400,
            "CommandMissing",
            f"No command message came within {FIRST_MESSAGE_SECONDS:g} s of the upgrade.",
            target="command",
        )
    if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        # ERROR: aiohttp already closed with the reason (1007 text not UTF-8, 1009 too large).
        return None
    if message.type is not WSMsgType.TEXT:
        return bad_request("The first message must be a JSON text frame with a 'command'.", "command")
    try:
        body = json.loads(message.data)
    except (ValueError, RecursionError):
        return bad_request("The first message is not valid JSON.", "command")
    try:
        return read_exec(body, argv=isinstance(body, dict) and "args" in body)
    except WireError as err:
        return err


def _start(sandbox: LocalSandbox, request: ExecRequest, relay: _Relay) -> asyncio.Future[CommandResult]:
    if request.argv is not None:
        work = sandbox.exec_argv(
            list(request.argv),
            cwd=request.working_directory,
            env=request.environment,
            timeout=request.timeout_seconds,
            on_output=relay.forward,
        )
    else:
        assert request.command is not None
        work = sandbox.exec_shell(
            request.command,
            cwd=request.working_directory,
            env=request.environment,
            timeout=request.timeout_seconds,
            on_output=relay.forward,
        )
    return asyncio.ensure_future(work)


async def _run_until_exit_or_hangup(
    socket: web.WebSocketResponse, work: asyncio.Future[CommandResult]
) -> bool:
    """Wait for the command while watching the socket; False when the client left first (the
    command is cancelled: the runtime hangs up on the sandbox's agent, which kills its group)."""
    while not work.done():
        listen: asyncio.Future[Any] = asyncio.ensure_future(socket.receive())
        try:
            await asyncio.wait((work, listen), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not listen.done():
                listen.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listen
        if listen.done() and not listen.cancelled():
            failed = listen.exception() is not None
            kind = WSMsgType.ERROR if failed else listen.result().type
            left = kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
            if left and not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, SandboxError):
                    await work
                return False
            # Any other frame after the command is ignored.
    return True


async def exec_stream(call: SandboxCall) -> web.StreamResponse:
    """Upgrade, read the command, stream its output, send its exit, close."""
    sandbox = call.sandbox()
    _check_query(call)
    socket = web.WebSocketResponse(
        max_msg_size=MAX_JSON_BODY_BYTES, heartbeat=HEARTBEAT_SECONDS, protocols=(SUBPROTOCOL,)
    )
    if not socket.can_prepare(call.request).ok:
        raise WireError(
            400,
            "WebSocketUpgradeRequired",
            "exec/stream is a WebSocket: connect with an Upgrade: websocket request.",
            target="Upgrade",
        )
    if sandbox.state is not SandboxState.RUNNING:
        raise _not_running(sandbox)
    await socket.prepare(call.request)
    try:
        request = await _read_command(socket)
        if request is None:
            return socket
        if isinstance(request, WireError):
            await _refuse(socket, request)
            return socket
        # Checked here, with no await before the command starts, so SandboxNotRunning is only
        # ever sent for a command that did not start.
        if sandbox.state is not SandboxState.RUNNING:
            await _refuse(socket, _not_running(sandbox))
            return socket
        relay = _Relay(socket)
        work = _start(sandbox, request, relay)
        try:
            if not await _run_until_exit_or_hangup(socket, work):
                return socket
            result = work.result()
        except SandboxError as exc:  # a stop while it ran is ConflictingOperation: never resent
            await _refuse(socket, wire_error(exc))
            return socket
        finally:
            if not work.done():  # this handler was cancelled (the server is closing)
                work.cancel()
        with contextlib.suppress(ConnectionError):
            await relay.finish(result)
        return socket
    finally:
        await socket.close(code=WSCloseCode.OK)
