"""PROTOTYPE. A template process that imports the heavy modules once and forks kernels from itself.

Run as ``python _kernel_template.py '<json spec>'``; the spec names the inherited file
descriptor of one end of a socket pair (``fd``) and the modules to import (``preload``).
The children share the template's imported modules copy-on-write: measured here, an
idle forked kernel has ~35 MiB of its own where a fresh one with numpy, pandas and
matplotlib imported has ~120 MiB (reference counting dirties shared pages, and
IPython's shell is still built per kernel).

Protocol (one JSON object per line):

- server -> template: ``{"id": n, "connection_file": ..., "data_dir": ..., "env": {...},
  "limits": {...}, "startup": ...}``
- template -> server: ``{"id": n, "pid": pid}`` once forked (or ``{"id": n, "error": ...}``),
  and ``{"exited": pid, "status": s}`` when a child ends (``s`` negative: killed by ``-s``).

Limits of the prototype: no per-kernel sandbox (children share the template's
namespaces), so it is only offered for ``sandbox="none"``. A sandboxed version needs each
child to enter its own mount, pid and network namespaces after the fork.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any


def _preload(modules: list[str]) -> None:
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    import importlib

    # The kernel itself first: it is the biggest share every kernel needs.
    for name in ("ipykernel.ipkernel", "ipykernel.kernelapp", *modules):
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"aca-template: could not preload {name}: {exc}", file=sys.stderr)
    gc.collect()
    # Objects alive now are never touched by the collector again, so their pages stay shared.
    gc.freeze()


def _child(request: dict[str, Any], channel: socket.socket, wakeup: int) -> None:
    """In the forked child: detach, confine, become the kernel. Never returns."""
    try:
        channel.close()
        os.close(wakeup)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        import _kernel_boot  # type: ignore[import-not-found]  # the script's dir is on sys.path

        _kernel_boot._apply_limits(request.get("limits", {}))
        os.environ.clear()
        os.environ.update(request.get("env", {}))
        os.chdir(request["data_dir"])
        _kernel_boot._die_with_parent()
        _kernel_boot.run_kernel(request["connection_file"], request["startup"])
    except BaseException as exc:
        print(f"aca-template child failed: {exc!r}", file=sys.stderr)
    finally:
        os._exit(1)


def main() -> None:
    spec = json.loads(sys.argv[1])
    import _kernel_boot

    _kernel_boot._die_with_parent()
    _preload(spec.get("preload", []))
    channel = socket.socket(fileno=int(spec["fd"]))
    channel.setblocking(False)
    read_end, wakeup = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(wakeup, False)
    signal.set_wakeup_fd(wakeup)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(channel, selectors.EVENT_READ, "channel")
    selector.register(read_end, selectors.EVENT_READ, "signal")
    pending = b""

    def send(message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        channel.setblocking(True)
        try:
            channel.sendall(data)
        finally:
            channel.setblocking(False)

    while True:
        for key, _ in selector.select():
            if key.data == "signal":
                with contextlib.suppress(BlockingIOError):
                    os.read(read_end, 4096)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                    send({"exited": pid, "status": code})
                continue
            try:
                chunk = channel.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                return  # the server went away
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    send({"id": request["id"], "error": str(exc)})
                    continue
                if pid == 0:
                    _child(request, channel, wakeup)
                send({"id": request["id"], "pid": pid})


if __name__ == "__main__":
    main()
