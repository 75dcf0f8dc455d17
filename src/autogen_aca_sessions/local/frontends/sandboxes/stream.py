"""``GET {s}/exec/stream``: a command's output over a WebSocket, while it runs.

The spec names this WebSocket but no frame protocol (reference section 3.9), so this server
defines a small one, all text frames holding one JSON object each:

client -> server, once, first::

    {"command": "make test"}                                   # bash, as executeShellCommand
    {"command": "python3", "args": ["-u", "job.py"]}           # no shell, as executeCommand
    # optional: "workingDirectory", "environment" {name: value}, "timeoutInSeconds"

server -> client, as output comes, then once at the end::

    {"type": "stdout", "data": "<text>"}      # output, decoded as UTF-8 (bad bytes replaced)
    {"type": "stderr", "data": "<text>"}
    {"type": "exit", "exitCode": 0, "executionTimeMs": 12, "timedOut": false, "truncated": false}
    {"type": "error", "error": {"code": "...", "message": "..."}}   # instead of "exit"

after which the server closes the socket (code 1000). Closing the socket early does not stop
the command (it is the sandbox's, as with executeShellCommand); its output is then dropped.
Refusals found before the upgrade (no such sandbox, bad api-version) are ordinary HTTP errors.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from ...runtime.sandboxes.errors import SandboxError
from ...runtime.sandboxes.models import OutputChunk, OutputStream
from ..dataplane.wire.errors import WireError
from .call import MAX_JSON_BODY_BYTES, SandboxCall
from .errors import wire_error
from .wire.common import read_exec

__all__ = ["exec_stream"]

FIRST_MESSAGE_SECONDS = 30.0
"""How long the server waits for the command message after the upgrade."""


def _error_frame(err: WireError) -> dict[str, Any]:
    return {"type": "error", "error": {"code": err.code, "message": err.message, "target": err.target}}


async def exec_stream(call: SandboxCall) -> web.StreamResponse:
    """Upgrade, read the command, stream its output, send its exit, close."""
    sandbox = call.sandbox()
    socket = web.WebSocketResponse(max_msg_size=MAX_JSON_BODY_BYTES, heartbeat=30.0)
    if not socket.can_prepare(call.request).ok:
        raise WireError(
            400,
            "WebSocketUpgradeRequired",
            "exec/stream is a WebSocket: connect with an Upgrade: websocket request.",
            target="Upgrade",
        )
    await socket.prepare(call.request)
    try:
        try:
            message = await asyncio.wait_for(socket.receive(), FIRST_MESSAGE_SECONDS)
        except asyncio.TimeoutError:
            err = WireError(400, "CommandMissing", "No command message came within 30 s of the upgrade.")
            await socket.send_json(_error_frame(err))
            return socket
        if message.type is not WSMsgType.TEXT:
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return socket
            err = WireError(
                400, "InvalidRequest", "The first message must be a JSON text frame with a 'command'."
            )
            await socket.send_json(_error_frame(err))
            return socket
        try:
            body = json.loads(message.data)
            argv = isinstance(body, dict) and "args" in body
            request = read_exec(body, argv=argv)
        except (ValueError, RecursionError):
            await socket.send_json(
                _error_frame(WireError(400, "InvalidRequest", "The message is not valid JSON."))
            )
            return socket
        except WireError as err:
            await socket.send_json(_error_frame(err))
            return socket

        decoders = {
            OutputStream.STDOUT: codecs.getincrementaldecoder("utf-8")(errors="replace"),
            OutputStream.STDERR: codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }

        async def forward(chunk: OutputChunk) -> None:
            text = decoders[chunk.stream].decode(chunk.data)
            if text and not socket.closed:
                with contextlib.suppress(ConnectionResetError):
                    await socket.send_json({"type": chunk.stream.value, "data": text})

        try:
            if request.argv is not None:
                work = sandbox.exec_argv(
                    list(request.argv),
                    cwd=request.working_directory,
                    env=request.environment,
                    timeout=request.timeout_seconds,
                    on_output=forward,
                )
            else:
                assert request.command is not None
                work = sandbox.exec_shell(
                    request.command,
                    cwd=request.working_directory,
                    env=request.environment,
                    timeout=request.timeout_seconds,
                    on_output=forward,
                )
            result = await work
        except SandboxError as exc:
            await socket.send_json(_error_frame(wire_error(exc)))
            return socket
        for stream, decoder in decoders.items():
            tail = decoder.decode(b"", final=True)
            if tail:
                await socket.send_json({"type": stream.value, "data": tail})
        await socket.send_json(
            {
                "type": "exit",
                "exitCode": result.exit_code,
                "executionTimeMs": result.duration_ms,
                "timedOut": result.timed_out,
                "truncated": result.truncated,
            }
        )
        return socket
    finally:
        await socket.close()
