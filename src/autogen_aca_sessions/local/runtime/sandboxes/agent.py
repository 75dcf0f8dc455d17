"""The agent inside every sandbox: runs the commands the server sends it (standard library only).

Started once per sandbox run, inside bubblewrap and as the sandbox's uid (``_kernel_boot.py``
runs it in its own interpreter: mode ``script``)::

    agent.py <listening-socket-fd>

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

One thread per connection, with ``selectors`` on the command's pipes, its pidfd and the
connection: no asyncio, whose import alone is a third of a sandbox's start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

_HEADER = struct.Struct(">cI")
_READ_BYTES = 65536
_DRAIN_SECONDS = 0.2
_MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _send(conn: socket.socket, kind: bytes, payload: bytes) -> None:
    conn.sendall(_HEADER.pack(kind, len(payload)) + payload)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    parts: list[bytes] = []
    while size:
        data = conn.recv(min(size, 1 << 20))
        if not data:
            raise EOFError
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def _read_request(conn: socket.socket) -> dict[str, Any]:
    kind, length = _HEADER.unpack(_recv_exact(conn, _HEADER.size))
    if kind != b"R" or length > _MAX_REQUEST_BYTES:
        raise ValueError("bad request frame")
    request = json.loads(_recv_exact(conn, length))
    if not isinstance(request, dict):
        raise ValueError("request is not an object")
    return request


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _run(request: dict[str, Any], conn: socket.socket) -> None:
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
        message = f"{argv[0] if argv else ''}: {exc.strerror or exc}\n"
        if isinstance(exc, FileNotFoundError) and not os.path.isdir(cwd):
            message = f"cannot change to working directory {cwd}: {exc.strerror}\n"
        _send(conn, b"E", message.encode())
        _send(conn, b"X", json.dumps({"exit_code": code, "duration_ms": 0, "timed_out": False}).encode())
        return
    assert proc.stdout is not None
    assert proc.stderr is not None
    pidfd = os.pidfd_open(proc.pid)
    selector = selectors.DefaultSelector()
    pipes = {proc.stdout.fileno(): b"O", proc.stderr.fileno(): b"E"}
    for fd in pipes:
        selector.register(fd, selectors.EVENT_READ, "pipe")
    selector.register(pidfd, selectors.EVENT_READ, "exit")
    # The server hanging up (its caller gave up) kills the command.
    selector.register(conn, selectors.EVENT_READ, "hangup")
    deadline = started + float(timeout) if timeout else None
    timed_out = False
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if exited_at is not None:
                if not pipes or now >= exited_at + _DRAIN_SECONDS:
                    break
                wait: float | None = exited_at + _DRAIN_SECONDS - now
            elif deadline is not None:
                wait = deadline - now
                if wait <= 0:
                    timed_out = True
                    deadline = None
                    _kill_group(proc.pid)
                    continue
            else:
                wait = None
            for key, _ in selector.select(wait):
                if key.data == "pipe":
                    fd = int(key.fd)
                    data = os.read(fd, _READ_BYTES)
                    if data:
                        _send(conn, pipes[fd], data)
                    else:
                        selector.unregister(fd)
                        del pipes[fd]
                elif key.data == "exit":
                    selector.unregister(pidfd)
                    exited_at = time.monotonic()
                else:
                    if not conn.recv(1):
                        selector.unregister(conn)
                        _kill_group(proc.pid)
        returncode = proc.wait()
    finally:
        if proc.returncode is None:  # the server went away mid-command
            _kill_group(proc.pid)
            proc.wait()
        selector.close()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    duration_ms = int(((exited_at or time.monotonic()) - started) * 1000)
    exit_code = returncode if returncode >= 0 else 128 - returncode
    result = {"exit_code": exit_code, "duration_ms": duration_ms, "timed_out": timed_out}
    _send(conn, b"X", json.dumps(result).encode())


def _handle(conn: socket.socket) -> None:
    try:
        request = _read_request(conn)
        if request.get("op") == "ping":
            _send(conn, b"P", b"{}")
        elif request.get("op") == "exec":
            _run(request, conn)
        else:
            _send(conn, b"F", json.dumps({"error": "unknown op"}).encode())
    except (OSError, EOFError):
        pass
    except Exception as exc:  # one bad request must not take the agent down
        with contextlib.suppress(OSError):
            _send(conn, b"F", json.dumps({"error": repr(exc)}).encode())
    finally:
        conn.close()


def _serve(fd: int) -> None:
    listener = socket.socket(fileno=fd)
    listener.set_inheritable(False)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_handle, args=(conn,), daemon=True).start()


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # Commands must not import from this directory by accident.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    _serve(int(sys.argv[1]))


if __name__ == "__main__":
    main()
