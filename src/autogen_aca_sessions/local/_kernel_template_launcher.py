"""PROTOTYPE. A :class:`~.kernel.KernelLauncher` that forks kernels from a pre-imported template.

Only for ``sandbox="none"`` (see ``_kernel_template.py`` for why). Use::

    launcher = TemplateKernelLauncher(limits=ResourceLimits())
    await launcher.start()
    manager = SessionManager(root=..., sandbox="none", launcher=launcher)
    ...
    await manager.close()
    await launcher.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_client.connect import write_connection_file

from .kernel import LaunchedKernel, kernel_environment
from .sandbox import ResourceLimits

__all__ = ["TemplateChild", "TemplateKernelLauncher"]

DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot")
"""Modules the template imports once for all its kernels."""


class TemplateChild:
    """A kernel forked by the template: not our child, so its exit is reported by the template."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @property
    def pid(self) -> int:
        """The kernel's host pid (it leads its own session and process group)."""
        return self._pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the template reported it."""
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        """Wait until the template reports the exit."""
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        """SIGKILL the kernel."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)

    def _exited(self, status: int) -> None:
        if not self._exit.done():
            self._exit.set_result(status)


class TemplateKernelLauncher:
    """Forks each kernel from one long-lived process that imported the heavy modules already."""

    def __init__(
        self, *, limits: ResourceLimits | None = None, preload: tuple[str, ...] = DEFAULT_PRELOAD
    ) -> None:
        self.limits = limits or ResourceLimits()
        self.preload = preload
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._children: dict[int, TemplateChild] = {}
        self._next_id = 0

    @property
    def template_pid(self) -> int | None:
        """The template process's pid while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the template and wait until it has imported everything."""
        ours, theirs = socket.socketpair()
        script = str(Path(__file__).with_name("_kernel_template.py"))
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            json.dumps({"preload": list(self.preload), "fd": theirs.fileno()}),
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._reader_task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                break
            message = json.loads(line)
            if "exited" in message:
                child = self._children.pop(int(message["exited"]), None)
                if child is not None:
                    child._exited(int(message["status"]))
            elif "id" in message:
                future = self._waiting.pop(int(message["id"]), None)
                if future is not None and not future.done():
                    future.set_result(message)
        for child in self._children.values():
            child._exited(-signal.SIGKILL)  # the template died and took its kernels along
        self._children.clear()

    async def launch(self, *, data_dir: Path, run_dir: Path, uid: int | None) -> LaunchedKernel:
        """Fork a kernel for ``data_dir`` (``uid`` is ignored: there is no sandbox)."""
        if self._writer is None:
            raise RuntimeError("TemplateKernelLauncher.start() has not been called")
        await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
        _, info = write_connection_file(
            str(run_dir / "kernel.json"),
            transport="ipc",
            ip=str(run_dir / "k"),
            key=secrets.token_hex(32).encode(),
        )
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        request = {
            "id": request_id,
            "connection_file": str(run_dir / "kernel.json"),
            "data_dir": str(data_dir),
            "env": kernel_environment(data_dir=str(data_dir), run_dir=str(run_dir)),
            "limits": self.limits.rlimits(with_nproc=os.geteuid() != 0),
            "startup": str(Path(__file__).with_name("_kernel_startup.py")),
        }
        self._writer.write((json.dumps(request) + "\n").encode())
        await self._writer.drain()
        reply = await asyncio.wait_for(future, timeout=30)
        if "error" in reply:
            raise OSError(f"the template could not fork a kernel: {reply['error']}")
        child = TemplateChild(int(reply["pid"]))
        self._children[child.pid] = child
        return LaunchedKernel(
            process=child,
            connection_info=dict(info),
            run_dir=run_dir,
            cgroup=None,
            started_at=time.monotonic(),
        )

    async def close(self) -> None:
        """Stop the template; its kernels die with it."""
        for child in list(self._children.values()):
            child.kill()
        if self._writer is not None:
            self._writer.close()
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()
        if self._reader_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader_task, timeout=5)
