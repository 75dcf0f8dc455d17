"""The server's side of the agent protocol (see ``agent.py``): one connection per request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import SandboxStartFailed
from .models import CommandResult, OutputChunk, OutputStream

__all__ = ["AgentClient", "AgentGone", "OutputCallback"]

_HEADER = struct.Struct(">cI")
_MAX_FRAME_BYTES = 1024 * 1024
_GRACE_SECONDS = 10.0
_STREAMS = {b"O": OutputStream.STDOUT, b"E": OutputStream.STDERR}

OutputCallback = Callable[[OutputChunk], Awaitable[None]]
"""Called with each piece of output while a command runs (for streaming)."""


class AgentGone(Exception):
    """The agent closed the connection before answering (its sandbox was stopped or killed)."""


class _Capped:
    """One stream's output, kept up to ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.truncated = False

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        if data:
            self.parts.append(data)
            self.size += len(data)

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", errors="replace")


class AgentClient:
    """Talks to one sandbox's agent through the listening socket the server made for it."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        """The host path of the socket the agent accepts on."""

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(str(self.socket_path), limit=_MAX_FRAME_BYTES * 2)

    @staticmethod
    def _send(writer: asyncio.StreamWriter, request: Mapping[str, Any]) -> None:
        payload = json.dumps(request).encode()
        writer.write(_HEADER.pack(b"R", len(payload)) + payload)

    @staticmethod
    async def _frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        try:
            kind, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            if length > _MAX_FRAME_BYTES:
                raise AgentGone(f"the agent sent a frame of {length} bytes")
            return kind, await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise AgentGone("the agent closed the connection") from exc

    async def ping(self) -> None:
        """Return once the agent answers (it accepts only after it started)."""
        try:
            reader, writer = await self._open()
        except OSError as exc:
            raise SandboxStartFailed(f"cannot reach the sandbox's agent: {exc}") from exc
        try:
            self._send(writer, {"op": "ping"})
            await writer.drain()
            kind, _ = await self._frame(reader)
            if kind != b"P":
                raise SandboxStartFailed(f"the sandbox's agent answered {kind!r} to a ping")
        finally:
            writer.close()

    async def exec(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str],
        timeout: float | None,
        on_output: OutputCallback | None,
        max_output_bytes: int,
    ) -> CommandResult:
        """Run ``argv`` in the sandbox and wait for its exit; output streams to ``on_output``.

        Raises :class:`AgentGone` when the sandbox's processes were killed meanwhile.
        Cancelling the call hangs up, and the agent then kills the command's process group.
        """
        try:
            reader, writer = await self._open()
        except OSError as exc:
            raise AgentGone(f"cannot reach the sandbox's agent: {exc}") from exc
        stdout, stderr = _Capped(max_output_bytes), _Capped(max_output_bytes)

        async def answer() -> dict[str, Any]:
            while True:
                kind, payload = await self._frame(reader)
                if kind in _STREAMS:
                    stream = _STREAMS[kind]
                    (stdout if stream is OutputStream.STDOUT else stderr).add(payload)
                    if on_output is not None:
                        await on_output(OutputChunk(stream, payload))
                elif kind == b"X":
                    done = json.loads(payload)
                    if not isinstance(done, dict):
                        raise AgentGone("the agent sent a malformed exit frame")
                    return done
                elif kind == b"F":
                    raise AgentGone(f"the agent refused the command: {json.loads(payload).get('error')}")

        try:
            self._send(
                writer, {"op": "exec", "argv": list(argv), "cwd": cwd, "env": dict(env), "timeout": timeout}
            )
            await writer.drain()
            # The agent runs as the sandbox's user, so code inside could take its place: the
            # server does not rely on it to honour the timeout (hanging up kills the command).
            try:
                done = await asyncio.wait_for(answer(), None if timeout is None else timeout + _GRACE_SECONDS)
            except asyncio.TimeoutError:
                done = {
                    "exit_code": 137,
                    "duration_ms": int(timeout * 1000) if timeout else 0,
                    "timed_out": True,
                }
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        truncated = stdout.truncated or stderr.truncated
        err = stderr.text()
        if truncated:
            err += f"\n[output beyond {max_output_bytes} bytes per stream was dropped]\n"
        if done.get("timed_out"):
            err += f"\n[the command was killed after its timeout of {timeout:g} s]\n"
        return CommandResult(
            exit_code=int(done.get("exit_code", -1)),
            stdout=stdout.text(),
            stderr=err,
            duration_ms=int(done.get("duration_ms", 0)),
            timed_out=bool(done.get("timed_out")),
            truncated=truncated,
        )
