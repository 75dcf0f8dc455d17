"""A :class:`~.kernel.KernelLauncher` that forks kernels from a pre-imported template process.

Opt-in (``LocalSessionPool(kernel_launcher="fork")``): an idle kernel with NumPy, pandas and
matplotlib imported owns ~15 MiB instead of ~100 MiB, and a new kernel answers in a few
hundred milliseconds instead of about a second (figures in ``benchmarks/README.md``).

The sandbox is the plain launcher's: for each kernel the launcher starts the very same
bwrap command line (same mounts, hidden directories, network, uid, rlimits and pids
cgroup) running ``cat`` on a lifeline pipe from the server instead of a kernel, the *holder*;
the template's forked child joins the holder's namespaces and the kernel runs inside them as the session's uid
without capabilities (see ``_kernel_template.py``). Killing the holder ends the sandbox's
pid namespace and with it the kernel and everything it started.

The kernel is not this process's child: the template is a child subreaper and reports
every exit on its control socket, which is how :attr:`TemplateChild.returncode` is known;
signals go through a pidfd, which cannot hit a recycled pid. Use::

    sandbox = await asyncio.to_thread(Sandbox.resolve, "bwrap")
    async with TemplateKernelLauncher(sandbox=sandbox, hide_paths=[root]) as launcher:
        config = PoolConfig(sandbox="bwrap", kernel_launcher="fork")
        async with SessionManager(root=root, config=config, launcher=launcher) as manager:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bubblewrap import SANDBOX_DATA_DIR, SANDBOX_RUN_DIR, Sandbox
from .kernel import KernelStartError, LaunchedKernel, PlainKernelLauncher
from .kernel_folder import kernel_environment, prepare_kernel_folder
from .signals import kill_process_group

__all__ = [
    "DEFAULT_PRELOAD",
    "PLAIN_WHILE_STARTING",
    "TemplateChild",
    "TemplateKernelLauncher",
    "default_probe_cache",
]

logger = logging.getLogger(__name__)

DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot")
"""Modules the template imports once for all its kernels."""
_TEMPLATE_START_SECONDS = 180.0
"""How long the template may take to import everything (a loaded 2-core machine is slow)."""
_FORK_SECONDS = 30.0
"""How long the template may take to answer one kernel request."""
_HOLDER_SECONDS = 30.0
"""How long a holder may take to be running its workload inside its sandbox."""
PLAIN_WHILE_STARTING = 1
"""Kernels a pool's launcher starts as plain interpreters while its template is not ready yet.

The template needs about a second from its launch to its first fork (the data-stack import
alone is half of it); a plain kernel answers about half a second after its launch. A new
pool's first kernel is therefore a plain one instead of waiting for the template. Only one:
each costs ~0.5 s of CPU beside the template's start and, once it imports the data stack,
~90 MiB instead of ~15; a second did not make the first block's result come sooner
(``benchmarks/README.md``, issue 21)."""


class TemplateChild:
    """The handle of a forked kernel (:class:`~.kernel.KernelProcess`).

    ``pid`` is the kernel's own host pid; its exit status comes from the template's
    report. In a sandbox, ``holder`` is the bwrap process whose namespaces the kernel
    joined: :meth:`kill` ends it too, and :meth:`wait` also waits for it.
    """

    def __init__(self, pid: int, holder: asyncio.subprocess.Process | None) -> None:
        self._pid = pid
        self.holder = holder
        """The holder's bwrap process (``None`` without a sandbox)."""
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pidfd: int | None = None
        with contextlib.suppress(OSError):
            self._pidfd = os.pidfd_open(pid)

    @property
    def pid(self) -> int:
        """The kernel's host pid (it leads its own process group)."""
        return self._pid

    @property
    def returncode(self) -> int | None:
        """The kernel's exit status once the template reported it (negative: the signal)."""
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        """Wait for the kernel's exit (and the holder's, which :meth:`kill` ends)."""
        status = await asyncio.shield(self._exit)
        if self.holder is not None:
            await self.holder.wait()
        return status

    def kill(self) -> None:
        """SIGKILL the kernel and its sandbox."""
        if not self._exit.done() and self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        _kill_holder(self.holder)

    def _exited(self, status: int) -> None:
        if not self._exit.done():
            self._exit.set_result(status)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        # The kernel is gone: its sandbox has nothing left to hold.
        _kill_holder(self.holder)


def _kill_holder(holder: asyncio.subprocess.Process | None) -> None:
    if holder is not None and holder.returncode is None:
        kill_process_group(holder)


class TemplateKernelLauncher:
    """Forks each kernel from one long-lived process that imported the heavy modules already.

    ``sandbox`` is the resolved :class:`~.bubblewrap.Sandbox` the session manager decided on
    (the sandbox is decided once, by whoever makes the launcher: :meth:`Sandbox.resolve`);
    its limits are the kernels' limits. ``egress`` and ``hide_paths`` mean what they mean for
    the manager: the pool root belongs in ``hide_paths``, nothing is inferred from where a
    kernel's directories sit. The template starts on :meth:`start` or on the first launch and
    again on the next launch if it died; :meth:`close` ends it and every kernel.
    """

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        egress: bool = False,
        hide_paths: Sequence[Path] = (),
        preload: Sequence[str] = DEFAULT_PRELOAD,
        probe_modules: bool = True,
        plain_while_starting: int = 0,
        mpl_cache: Path | None = None,
        probe_cache: Path | None = None,
    ) -> None:
        self.sandbox = sandbox
        """The sandbox every kernel runs in."""
        self.limits = sandbox.limits
        """Per-kernel resource limits (the sandbox's)."""
        self.egress = egress
        """Whether kernels may use the network (sandboxed only)."""
        self.hide_paths = [Path(p).absolute() for p in hide_paths]
        """Host directories kernels must not see (the session manager that makes the launcher passes
        its own list: the pool root, the server's private files, the kernels' runtime base)."""
        self.preload = tuple(preload)
        """Modules the template imports."""
        self.probe_modules = probe_modules
        """Whether the template also imports every module a started kernel has loaded."""
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[int] | None = None
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._holders: dict[int, asyncio.subprocess.Process | None] = {}
        self._children: dict[int, TemplateChild] = {}
        self._all_children: set[TemplateChild] = set()
        self._live_holders: set[asyncio.subprocess.Process] = set()
        """Every holder started and not yet seen to exit, whether or not its launch finished:
        :meth:`close` kills these too, so that a launch in flight when the pool closes (a
        restart racing a stop) cannot leave a sandbox behind."""
        self.probe_cache = probe_cache if probe_cache is not None else default_probe_cache()
        """Where the template keeps the module list its probe kernel found (per interpreter and
        installed packages), so that the next template skips the probe."""
        self.probed: bool | None = None
        """Whether the running template ran its probe kernel (False: the list was cached)."""
        self.plain_while_starting = plain_while_starting
        """How many kernels may still start plain while the template is not ready."""
        self.plain_launches = 0
        """Kernels started plain so far (see ``plain_while_starting``)."""
        self._plain = PlainKernelLauncher(
            sandbox, egress=egress, hide_paths=self.hide_paths, mpl_cache=mpl_cache
        )
        self._starting: asyncio.Task[None] | None = None
        self._next_id = 0
        self._lock = asyncio.Lock()
        self._private: Path | None = None
        self._closed = False

    @property
    def template_pid(self) -> int | None:
        """The template process's pid while it runs."""
        if self._process is None or self._process.returncode is not None:
            return None
        return self._process.pid

    async def __aenter__(self) -> TemplateKernelLauncher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the template; returns once it has imported everything."""
        async with self._lock:
            await self._ensure_template()

    async def _ensure_template(self) -> None:
        if self._closed:
            raise RuntimeError("the launcher is closed")
        if self._private is None:
            self._private = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="aca-template-"))
        if self._process is not None and self._process.returncode is None and self._ready is not None:
            await asyncio.shield(self._ready)
            return
        if self._process is not None:
            logger.warning("the kernel template process is gone; starting a new one")
            await self._stop_template()
        ours, theirs = socket.socketpair()
        # A kernel's /proc/self/environ shows the environment its process started with, which
        # a fork inherits: the template starts with a kernel's environment, not the server's.
        env = kernel_environment(data_dir=SANDBOX_DATA_DIR, run_dir=SANDBOX_RUN_DIR)
        env.pop("MPLCONFIGDIR")
        # The server's home: matplotlib finds its font cache there instead of rebuilding it.
        env["HOME"] = os.environ.get("HOME", "/tmp")
        env["IPYTHONDIR"] = str(self._private / "ipython")
        spec = {
            "fd": theirs.fileno(),
            "parent": os.getpid(),
            "preload": list(self.preload),
            "probe": self.probe_modules,
            "probe_cache": str(self.probe_cache),
            "startup": str(Path(__file__).with_name("_kernel_startup.py")),
        }
        log = await asyncio.to_thread(open, self._private / "template.log", "ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).with_name("_kernel_template.py")),
                json.dumps(spec),
                pass_fds=(theirs.fileno(),),
                env=env,
                cwd=str(self._private),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 20)
        self._ready = asyncio.get_running_loop().create_future()
        # The start-up is awaited through a shield: when that wait is cancelled (the pool closes
        # while the template starts), a later failure would be logged as never retrieved.
        self._ready.add_done_callback(_consume_outcome)
        self._reader_task = asyncio.ensure_future(self._read(reader, self._ready))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), _TEMPLATE_START_SECONDS)
        except BaseException:
            await self._stop_template()
            raise

    async def _read(self, reader: asyncio.StreamReader, ready: asyncio.Future[int]) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if "exited" in message:
                    child = self._children.pop(int(message["exited"]), None)
                    if child is not None:
                        child._exited(int(message["status"]))
                elif "id" in message:
                    request_id = int(message["id"])
                    future = self._waiting.pop(request_id, None)
                    holder = self._holders.pop(request_id, None)
                    if "pid" in message:
                        # Registered here, before any later exit report is read.
                        child = TemplateChild(int(message["pid"]), holder)
                        self._children[child.pid] = child
                        self._all_children.add(child)
                        message["child"] = child
                    if future is not None and not future.done():
                        future.set_result(message)
                    elif "child" in message:
                        # Its launch gave up (timed out or cancelled): nobody will use it.
                        message["child"].kill()
                elif "ready" in message and not ready.done():
                    self.probed = bool(message.get("probed"))
                    ready.set_result(int(message["ready"]))
        except (ValueError, OSError) as exc:
            logger.warning("lost the kernel template's control socket: %s", exc)
        finally:
            if not ready.done():
                ready.set_exception(KernelStartError("the kernel template exited during start-up"))
            # The template is gone: kernels it reaped no longer report; count them as killed.
            for child in list(self._children.values()):
                child.kill()
                child._exited(-signal.SIGKILL)
            self._children.clear()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(KernelStartError("the kernel template exited"))
            self._waiting.clear()

    @property
    def template_ready(self) -> bool:
        """Whether the template runs and has imported everything (a launch forks at once)."""
        ready = self._ready
        return (
            self._process is not None
            and self._process.returncode is None
            and ready is not None
            and ready.done()
            and not ready.cancelled()
            and ready.exception() is None
        )

    def _start_in_background(self) -> None:
        """Start the template without waiting for it (a failure is retried by the next launch)."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._background_start())

    async def _background_start(self) -> None:
        try:
            await self.start()
        except Exception as exc:
            logger.warning("the kernel template did not start (%s); the next launch retries", exc)

    async def launch(self, *, data_dir: Path, run_dir: Path, uid: int | None) -> LaunchedKernel:
        """Fork a kernel for ``data_dir`` in a sandbox like the plain launcher's (or, while the
        template starts, a plain kernel: see ``plain_while_starting``)."""
        if self._closed:
            raise RuntimeError("the launcher is closed")
        if self.plain_launches < self.plain_while_starting and not self.template_ready:
            self.plain_launches += 1
            self._start_in_background()
            self._check_privileges(uid)
            return await self._plain.launch(data_dir=data_dir, run_dir=run_dir, uid=uid)
        async with self._lock:
            await self._ensure_template()
        self._all_children = {
            c
            for c in self._all_children
            if c.returncode is None or (c.holder is not None and c.holder.returncode is None)
        }
        sandbox = self.sandbox
        self._check_privileges(uid)
        folder = await prepare_kernel_folder(
            sandbox, data_dir=data_dir, run_dir=run_dir, uid=uid, cgroup_prefix="t"
        )
        cgroup = folder.cgroup
        holder: asyncio.subprocess.Process | None = None
        ns_pid: int | None = None
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        try:
            if sandbox.sandboxed:
                holder, ns_pid = await self._start_holder(
                    sandbox,
                    data_dir=data_dir,
                    run_dir=run_dir,
                    uid=uid,
                    with_nproc=folder.with_nproc,
                    env=folder.env,
                    cgroup=cgroup,
                )
            request = {
                "id": request_id,
                "connection_file": folder.connection_file,
                "cwd": folder.inner_data,
                "env": folder.env,
                "limits": sandbox.limits.rlimits(with_nproc=folder.with_nproc),
                "ns_pid": ns_pid,
                "uid": uid,
                "cgroup_procs": str(cgroup / "cgroup.procs") if cgroup is not None else None,
            }
            self._waiting[request_id] = future
            self._holders[request_id] = holder
            writer = self._writer
            if writer is None:
                raise KernelStartError("the kernel template is not running")
            writer.write((json.dumps(request) + "\n").encode())
            await writer.drain()
            reply = await asyncio.wait_for(future, timeout=_FORK_SECONDS)
            if "error" in reply:
                raise KernelStartError(f"the template could not start a kernel: {reply['error']}")
        except BaseException:
            self._waiting.pop(request_id, None)
            self._holders.pop(request_id, None)
            if future.done() and not future.cancelled() and future.exception() is None:
                late = future.result().get("child")
                if isinstance(late, TemplateChild):
                    late.kill()
            _kill_holder(holder)
            if holder is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(holder.wait(), 10)
            if cgroup is not None:
                from .bubblewrap import PidsCgroup

                await asyncio.to_thread(PidsCgroup.remove, cgroup)
            raise
        child: TemplateChild = reply["child"]
        return LaunchedKernel(
            process=child,
            connection_info=folder.connection_info,
            run_dir=run_dir,
            cgroup=cgroup,
            started_at=time.monotonic(),
        )

    def _check_privileges(self, uid: int | None) -> None:
        sandbox = self.sandbox
        if uid is not None and not sandbox.drops_privileges:
            # Only a launcher handed a sandbox other than its session manager's gets here
            # (the manager makes its own launcher with its own sandbox): never run with less.
            raise KernelStartError(
                f"the kernel launcher's sandbox ({sandbox.isolation}) is weaker than the session manager's"
            )

    async def _start_holder(
        self,
        sandbox: Sandbox,
        *,
        data_dir: Path,
        run_dir: Path,
        uid: int | None,
        with_nproc: bool,
        env: dict[str, str],
        cgroup: Path | None,
    ) -> tuple[asyncio.subprocess.Process, int]:
        """Start the session's sandbox with its workload in it (``cat`` reading a pipe only the
        server holds open: it ends with the server, whatever ends the server); returns it and
        the host pid of the workload."""
        spec = sandbox.boot_spec("exec", uid=uid, with_nproc=with_nproc, argv=[_WORKLOAD])
        command = sandbox.command(
            spec,
            data_dir=data_dir,
            run_dir=run_dir,
            hide=self.hide_paths,
            egress=self.egress,
            env=env,
        )
        # The write end stays in this process only (non-inheritable); it is closed when the
        # holder is seen to exit, and by the kernel if this process dies first.
        lifeline, keep = os.pipe()
        try:
            holder = await command.start(lifeline=lifeline)
        except BaseException:
            os.close(keep)
            raise
        finally:
            os.close(lifeline)
        self._track_holder(holder, keep)
        try:
            deadline = time.monotonic() + _HOLDER_SECONDS
            delay = 0.002
            while True:
                found = await asyncio.to_thread(_find_workload, holder.pid)
                if found is not None:
                    if cgroup is not None:
                        # In the kernel's group, the holder's workload dies with the group
                        # (stop_launched empties it), even if the bwrap above it is gone.
                        await asyncio.to_thread(_join_cgroup, cgroup, found)
                    return holder, found
                if holder.returncode is not None:
                    raise KernelStartError(f"the sandbox exited at once (status {holder.returncode})")
                if time.monotonic() > deadline:
                    raise KernelStartError("the sandbox did not start in time")
                await asyncio.sleep(delay)
                delay = min(0.02, delay * 2)
        except BaseException:
            _kill_holder(holder)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(holder.wait(), 10)
            raise

    def _track_holder(self, holder: asyncio.subprocess.Process, lifeline: int) -> None:
        self._live_holders.add(holder)
        waiter = asyncio.ensure_future(holder.wait())

        def exited(_: object) -> None:
            self._live_holders.discard(holder)
            os.close(lifeline)

        waiter.add_done_callback(exited)

    async def close(self) -> None:
        """Kill every kernel and sandbox, stop the template, remove its directory. Idempotent."""
        self._closed = True
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        for child in list(self._all_children):
            child.kill()
        for holder in list(self._live_holders):
            _kill_holder(holder)
        await self._stop_template()
        for child in list(self._all_children):
            child._exited(-signal.SIGKILL)
            if child.holder is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.holder.wait(), 10)
        self._all_children.clear()
        for holder in list(self._live_holders):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(holder.wait(), 10)
        if self._private is not None:
            await asyncio.to_thread(shutil.rmtree, self._private, True)
            self._private = None

    async def _stop_template(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        process = self._process
        if process is not None and process.returncode is None:
            kill_process_group(process)
        if process is not None:
            await process.wait()
        if self._reader_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader_task, timeout=5)
            self._reader_task = None
        self._process = None
        self._ready = None


def default_probe_cache() -> Path:
    """The user's cache directory for this package (``$XDG_CACHE_HOME/autogen-aca-sessions``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "autogen-aca-sessions"


def _find_workload(root: int) -> int | None:
    """The host pid of the holder's workload (``cat``) under ``root``, if running."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                kids = [int(p) for p in children.read().split()]
        except (OSError, ValueError):
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/comm") as comm:
                    if comm.read().strip() == _WORKLOAD:
                        return kid
            except OSError:
                continue
            todo.append(kid)
    return None


_WORKLOAD = "cat"
"""The holder's workload: it waits on its stdin, the server's lifeline pipe (see
:meth:`~.bubblewrap.SandboxCommand.start`), and holds the namespaces the kernel joins."""


def _join_cgroup(cgroup: Path, pid: int) -> None:
    """Move ``pid`` into ``cgroup`` (best effort: a holder that already exited has nothing to move)."""
    with contextlib.suppress(OSError):
        (cgroup / "cgroup.procs").write_text(f"{pid}\n")


def _consume_outcome(future: asyncio.Future[int]) -> None:
    """Mark a future's exception as seen; whoever awaits it still gets it."""
    if not future.cancelled():
        future.exception()
