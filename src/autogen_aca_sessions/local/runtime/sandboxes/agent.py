"""The agent inside every sandbox: runs the commands the server sends it (standard library only).

Started once per sandbox run, by path, inside bubblewrap and as the sandbox's uid::

    python agent.py <listening-socket-fd>

The server made the listening Unix socket in a directory the sandbox cannot see and handed
the descriptor down (so no code in the sandbox can swap the socket the server connects to).
Each connection carries one request and its answer, in frames of one type byte, a 4-byte
big-endian length and the payload:

- server → agent ``R``: JSON ``{"op": "exec", "argv", "cwd", "env", "timeout"}`` or ``{"op": "ping"}``;
- agent → server ``S`` (started, ``{"pid"}``), ``O``/``E`` (stdout/stderr bytes, as they come),
  ``X`` (``{"exit_code", "duration_ms", "timed_out"}``), ``P`` (pong), ``F`` (``{"error"}``).

A command leads a process group of its own; it is killed (the whole group) when its timeout
passes or the server hangs up. When it exits normally its background children live on
(``nohup server &``): bubblewrap's init reaps them when they end. Output still arriving after
the exit is read for at most ``_DRAIN_SECONDS``, so a background child that keeps the pipe
open does not hold the answer back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

_HEADER = struct.Struct(">cI")
_READ_BYTES = 65536
_DRAIN_SECONDS = 0.2
_MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _frame(kind: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


async def _read_request(reader: asyncio.StreamReader) -> dict[str, Any]:
    kind, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if kind != b"R" or length > _MAX_REQUEST_BYTES:
        raise ValueError("bad request frame")
    request = json.loads(await reader.readexactly(length))
    if not isinstance(request, dict):
        raise ValueError("request is not an object")
    return request


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


async def _run(request: dict[str, Any], writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
    loop = asyncio.get_running_loop()
    argv = [str(a) for a in request["argv"]]
    env = {str(k): str(v) for k, v in dict(request.get("env") or {}).items()}
    cwd = request.get("cwd") or env.get("HOME") or "/"
    timeout = request.get("timeout")
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        # What a shell would say: 127 for a missing program, 126 for one that cannot run.
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        message = f"{argv[0] if argv else ''}: {exc.strerror or exc}\n".encode()
        if isinstance(exc, FileNotFoundError) and not os.path.isdir(cwd):
            message = f"cannot change to working directory {cwd}: {exc.strerror}\n".encode()
        writer.write(_frame(b"E", message))
        result = {"exit_code": code, "duration_ms": 0, "timed_out": False}
        writer.write(_frame(b"X", json.dumps(result).encode()))
        await writer.drain()
        return
    writer.write(_frame(b"S", json.dumps({"pid": proc.pid}).encode()))
    assert proc.stdout is not None and proc.stderr is not None
    open_fds: dict[int, bytes] = {proc.stdout.fileno(): b"O", proc.stderr.fileno(): b"E"}
    pipes_done = asyncio.Event()

    def on_readable(fd: int) -> None:
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            writer.write(_frame(open_fds[fd], data))
            return
        loop.remove_reader(fd)
        del open_fds[fd]
        if not open_fds:
            pipes_done.set()

    for fd in open_fds:
        os.set_blocking(fd, False)
        loop.add_reader(fd, on_readable, fd)

    exited = asyncio.Event()
    pidfd = os.pidfd_open(proc.pid)
    loop.add_reader(pidfd, exited.set)
    timed_out = False

    def on_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        _kill_group(proc.pid)

    timer = loop.call_later(float(timeout), on_timeout) if timeout else None
    # The server hanging up (its caller gave up) kills the command.
    hangup = asyncio.ensure_future(reader.read(1))
    try:
        waiter = asyncio.ensure_future(exited.wait())
        done, _ = await asyncio.wait({waiter, hangup}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            _kill_group(proc.pid)
            await waiter
        returncode = proc.wait()
        duration_ms = int((time.monotonic() - started) * 1000)
        try:
            await asyncio.wait_for(pipes_done.wait(), _DRAIN_SECONDS)
        except asyncio.TimeoutError:
            pass
    finally:
        if timer is not None:
            timer.cancel()
        loop.remove_reader(pidfd)
        os.close(pidfd)
        for fd in list(open_fds):
            loop.remove_reader(fd)
        proc.stdout.close()
        proc.stderr.close()
        hangup.cancel()
    exit_code = returncode if returncode >= 0 else 128 - returncode
    result = {"exit_code": exit_code, "duration_ms": duration_ms, "timed_out": timed_out}
    writer.write(_frame(b"X", json.dumps(result).encode()))
    await writer.drain()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await _read_request(reader)
        if request.get("op") == "ping":
            writer.write(_frame(b"P", b"{}"))
        elif request.get("op") == "exec":
            await _run(request, writer, reader)
        else:
            writer.write(_frame(b"F", json.dumps({"error": "unknown op"}).encode()))
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    except Exception as exc:  # one bad request must not take the agent down
        try:
            writer.write(_frame(b"F", json.dumps({"error": repr(exc)}).encode()))
            await writer.drain()
        except ConnectionError:
            pass
    finally:
        writer.close()


async def _serve(fd: int) -> None:
    listener = socket.socket(fileno=fd)
    listener.set_inheritable(False)
    server = await asyncio.start_unix_server(_handle, sock=listener)
    async with server:
        await server.serve_forever()


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # Running by path puts this directory first on sys.path; commands must not see it.
    sys.path[:] = [
        p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))
    ]
    asyncio.run(_serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
