"""The local pool's sessions: one sandboxed kernel (or shell) and one data directory per identifier.

:class:`SessionManager` is the only thing the HTTP layer talks to (see ``docs/design.md``
section 2). It keeps ``ready_sessions`` kernels started ahead of need so that a new
identifier gets one at once, reaps sessions idle for ``cooldown_period_seconds``, and
never lets more than ``max_concurrent_sessions`` exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import zmq.asyncio

from .kernel import (
    Kernel,
    KernelLauncher,
    KernelStartError,
    OutputBuffer,
    PlainKernelLauncher,
    client_context,
    kernel_environment,
)
from .outcome import CodeOutput, Outcome, PoolFullError, ShellOutput
from .sandbox import BWRAP_PATH, SANDBOX_RUN_DIR, SESSION_UID_BASE, SESSION_UID_SPAN, ResourceLimits, Sandbox
from .signals import kill_process_group

__all__ = [
    "KernelInfo",
    "NameVersion",
    "PoolRuntimeInfo",
    "Session",
    "SessionManager",
]

logger = logging.getLogger(__name__)

POOL_TYPES = ("PythonLTS", "Shell")
"""Pool types the runtime serves."""
MAX_OUTPUT_CHARS = 32_000_000
"""Hard upper bound of ``max_output_chars``: what one call may keep of each stream in memory."""
_SHELL_SCRIPT = "command.sh"
"""Name of the file a shell command is run from, in the command's private run dir."""
_SHELL_TIMEOUT_EXIT = 124
"""Exit status of a shell command killed at its time limit (as ``timeout(1)`` reports)."""


@dataclass(frozen=True)
class NameVersion:
    """A named thing and its version (a runtime, a package, the kernel)."""

    name: str
    """Its name (``Python``, ``numpy``, ``python3``)."""
    version: str
    """Its version string."""


@dataclass(frozen=True)
class KernelInfo:
    """The Jupyter kernel sessions of a Python pool run."""

    name: str
    """The kernel name (``python3``)."""
    version: str
    """The kernel implementation's version (ipykernel's)."""
    display_name: str
    """The name a notebook front end shows."""
    language: str
    """The kernel's language (``python``)."""
    language_version: str
    """The language version (``3.11.7``)."""
    protocol_version: str
    """The Jupyter messaging protocol version the kernel speaks."""


@dataclass(frozen=True)
class PoolRuntimeInfo:
    """What ``GET /metadata`` reports about the pool's runtime."""

    runtimes: list[NameVersion]
    """The language runtimes sessions run (one Python, or bash for Shell pools)."""
    pre_installed_packages: list[NameVersion]
    """Distributions importable by session code, sorted by lower-cased name."""
    jupyter_kernel: KernelInfo | None
    """The Jupyter kernel; ``None`` for Shell pools."""
    created_at: datetime
    """When the pool was started."""
    last_updated_at: datetime
    """When the runtime last changed (packages are fixed per pool: the start time)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Slot:
    """A data directory and, for Python pools, a kernel started for it."""

    slot_id: str
    home: Path
    data_dir: Path
    uid: int | None = None
    kernel: Kernel | None = None
    starting: asyncio.Task[Kernel] | None = field(default=None, repr=False)


class Session:
    """One session: its data directory, its kernel, and its idle timer."""

    def __init__(self, manager: SessionManager, identifier: str, slot: _Slot) -> None:
        self._manager = manager
        self._slot = slot
        self.identifier = identifier
        """The identifier the caller chose."""
        self.created_at = _utcnow()
        """When the session was created."""
        self.last_accessed_at = self.created_at
        """When a request last named the session."""
        self.etag = uuid.uuid4().hex
        """An opaque tag that changes whenever the session is touched."""
        self.guid = str(uuid.uuid4())
        """Random name of this incarnation (``x-ms-session-guid``): an identifier deleted and
        created again gets a new one, so a client can tell that its session was replaced."""
        self.data_dir = slot.data_dir
        """The host directory code sees as ``/mnt/data`` (its working directory)."""
        self._lock = asyncio.Lock()
        self._last_touch = time.monotonic()
        self._closed = False
        self._state_lost_unreported = False
        self.kernel_restarts = 0
        """How many times the kernel was replaced (timeout kills, deaths)."""

    @property
    def expire_at(self) -> datetime:
        """When the session will be deleted unless touched again."""
        return self.last_accessed_at + timedelta(seconds=self._manager.cooldown_period_seconds)

    @property
    def uid(self) -> int | None:
        """The host uid session code runs as (``None`` when the sandbox does not switch users).

        Files the server writes into :attr:`data_dir` must belong to it (uploads do: they take
        the owner of the data directory); nothing walks the directory to fix ownership later.
        """
        return self._slot.uid

    @property
    def busy(self) -> bool:
        """Whether a call is running or waiting on this session."""
        return self._lock.locked()

    @property
    def closed(self) -> bool:
        """Whether the session was deleted (its calls fail from then on)."""
        return self._closed

    def touch(self) -> None:
        """Reset the idle timer: every request on the session calls this."""
        self.last_accessed_at = _utcnow()
        self._last_touch = time.monotonic()
        self.etag = uuid.uuid4().hex

    def _idle_seconds(self) -> float:
        return time.monotonic() - self._last_touch

    async def execute(self, code: str, *, timeout: float, max_output_chars: int) -> CodeOutput:
        """Run ``code`` in the session's kernel (one call at a time, in arrival order)."""
        self.touch()
        async with self._lock:
            try:
                return await self._execute_locked(code, timeout=timeout, max_output_chars=max_output_chars)
            finally:
                self.touch()

    async def _execute_locked(self, code: str, *, timeout: float, max_output_chars: int) -> CodeOutput:
        if self._closed:
            return _no_kernel_output("The session was deleted while this call waited.")
        if self._manager.pool_type == "Shell":
            raise RuntimeError("this is a Shell pool: use run_shell")
        try:
            kernel, state_lost = await self._kernel()
        except KernelStartError as exc:
            return _no_kernel_output(f"A kernel could not be started for this session: {exc}")
        timeout = max(0.0, min(timeout, self._manager.max_execution_seconds))
        max_output_chars = max(0, min(max_output_chars, MAX_OUTPUT_CHARS))
        output = await kernel.execute(code, timeout=timeout, max_output_chars=max_output_chars)
        if output.outcome in (Outcome.TIMED_OUT_RESTARTED, Outcome.KERNEL_DIED):
            self._replace_kernel(kernel)
        output.state_lost = output.state_lost or state_lost
        return output

    async def _kernel(self) -> tuple[Kernel, bool]:
        """The live kernel, starting one if needed; True when state was lost unreported."""
        slot = self._slot
        if slot.kernel is not None and not slot.kernel.alive:
            # It died between calls (killed from outside, OOM): the caller must hear of it.
            dead = slot.kernel
            slot.kernel = None
            self._state_lost_unreported = True
            self.kernel_restarts += 1
            await dead.kill()
        if slot.kernel is None:
            if slot.starting is None:
                slot.starting = asyncio.ensure_future(self._manager._start_kernel(slot))
            task = slot.starting
            try:
                slot.kernel = await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise  # our caller was cancelled, not the start
                raise KernelStartError("the session was deleted while its kernel started") from None
            finally:
                if slot.starting is task and task.done():
                    slot.starting = None
        lost = self._state_lost_unreported
        self._state_lost_unreported = False
        return slot.kernel, lost

    def _replace_kernel(self, dead: Kernel) -> None:
        """Start the replacement now, so the next call waits as little as possible."""
        self.kernel_restarts += 1
        if self._slot.kernel is dead:
            self._slot.kernel = None
        self._manager._spawn(dead.kill())
        if not self._closed:
            self._slot.starting = asyncio.ensure_future(self._manager._start_kernel(self._slot))

    async def run_shell(self, command: str, *, timeout: float, max_output_chars: int) -> ShellOutput:
        """Run ``bash -c command`` in the session's sandbox with its data directory as cwd."""
        self.touch()
        async with self._lock:
            try:
                if self._closed:
                    return ShellOutput(
                        exit_code=-1, stderr="The session was deleted while this call waited.\n"
                    )
                timeout = max(0.0, min(timeout, self._manager.max_execution_seconds))
                cap = max(0, min(max_output_chars, MAX_OUTPUT_CHARS))
                return await self._manager._run_shell(self._slot, command, timeout, cap)
            finally:
                self.touch()

    async def _wait_idle(self) -> None:
        """Return once calls queued on this session before now have ended."""
        async with self._lock:
            pass

    async def _close(self) -> None:
        self._closed = True
        await self._manager._discard_slot(self._slot)


def _no_kernel_output(message: str) -> CodeOutput:
    return CodeOutput(
        outcome=Outcome.KERNEL_DIED,
        stderr=message + "\n",
        stderr_length=len(message) + 1,
        state_lost=True,
        message=message,
        error_name="KernelDied",
        error_value=message,
    )


class SessionManager:
    """All sessions of one local pool; see ``docs/design.md`` section 2.

    Besides the parameters of the design:

    - ``bwrap_path``: the bubblewrap binary (tests point it at a missing file).
    - ``limits``: per-session :class:`~.sandbox.ResourceLimits` (memory 4 GiB, 256
      processes, 1 GiB files, 1024 open files by default).
    - ``launcher``: a :class:`~.kernel.KernelLauncher` to start kernels with (a future
      fork-from-template launcher); by default each kernel is a fresh interpreter.
    - ``kernel_start_timeout``: how long a kernel may take to answer after its start.
    - ``hide_paths``: more host directories session code must not see (the server's
      private files); ``root``, the homes and the server's working directory always are.

    With ``sandbox="none"`` (or ``"auto"`` without a working bwrap) code runs as the
    server's user with its session's data directory as working directory: relative
    paths work, absolute ``/mnt/data/...`` paths do not, and nothing stops code from
    reading the host's files or reaching its network. :attr:`isolation` says which.
    """

    def __init__(
        self,
        *,
        root: Path,
        pool_type: str = "PythonLTS",
        max_concurrent_sessions: int = 100,
        ready_sessions: int = 2,
        cooldown_period_seconds: float = 300,
        max_execution_seconds: float = 220,
        egress: bool = False,
        sandbox: str = "auto",
        bwrap_path: str = BWRAP_PATH,
        limits: ResourceLimits | None = None,
        launcher: KernelLauncher | None = None,
        kernel_start_timeout: float = 60.0,
        hide_paths: Sequence[Path] = (),
    ) -> None:
        if pool_type not in POOL_TYPES:
            raise ValueError(f"pool_type must be one of {POOL_TYPES}, not {pool_type!r}")
        self.root = Path(root).absolute()
        """Where session data directories are made (``<root>/sessions/<slot>/data``)."""
        self.pool_type = pool_type
        """``PythonLTS`` (a kernel per session) or ``Shell`` (bash commands, no kernel)."""
        self.max_concurrent_sessions = max_concurrent_sessions
        """How many sessions may exist at once (ready kernels do not count)."""
        self.ready_sessions = max(0, ready_sessions)
        """How many kernels are kept started ahead of need."""
        self.cooldown_period_seconds = cooldown_period_seconds
        """Idle time after which a session is deleted."""
        self.max_execution_seconds = max_execution_seconds
        """Upper bound for any one execution's timeout."""
        self.egress = egress
        """Whether session code may use the network."""
        self.sandbox_mode = sandbox
        """The sandbox asked for: ``auto``, ``bwrap`` or ``none``."""
        self.bwrap_path = bwrap_path
        self.limits = limits or ResourceLimits()
        """Resource limits each session gets."""
        self.kernel_start_timeout = kernel_start_timeout
        """How long a kernel may take to answer after its start."""
        self.hide_paths = [Path(p).absolute() for p in hide_paths]
        """Host directories session code must not see besides ``root`` (the server's private files)."""
        self._launcher = launcher
        self._sandbox: Sandbox | None = None
        self._sessions: dict[str, Session] = {}
        self._ready: deque[_Slot] = deque()
        self._refill = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._made_root = False
        self._run_base: Path | None = None
        self._private: Path | None = None
        self._info: PoolRuntimeInfo | None = None
        self._info_task: asyncio.Future[PoolRuntimeInfo] | None = None
        self._zmq_context: zmq.asyncio.Context | None = None
        self._start_gate = asyncio.Semaphore(max(2, os.cpu_count() or 2))
        self._started = False
        self._closed = False
        self._uid_counter = int.from_bytes(os.urandom(3), "big")
        self.created_at = _utcnow()
        """When the manager was made."""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """``"bwrap"`` or ``"none"``: the confinement actually in force (after :meth:`start`)."""
        return self._sandbox.isolation if self._sandbox is not None else "none"

    @property
    def sandbox(self) -> Sandbox:
        """The resolved sandbox (after :meth:`start`)."""
        if self._sandbox is None:
            raise RuntimeError("SessionManager.start() has not been called")
        return self._sandbox

    @property
    def unsandboxed_warning(self) -> str | None:
        """The warning logged when code runs without a sandbox although one was wanted."""
        return self._sandbox.warning if self._sandbox is not None else None

    async def start(self) -> None:
        """Resolve the sandbox, fill the ready pool (in the background), start the reaper."""
        if self._started:
            return
        self._started = True
        if not self.root.exists():
            self._made_root = True
        (self.root / "sessions").mkdir(parents=True, exist_ok=True)
        self._private = Path(tempfile.mkdtemp(prefix=".aca-private-", dir=self.root))
        # Unix socket paths are limited to ~107 bytes, so runtime dirs live in a short path.
        self._run_base = Path(tempfile.mkdtemp(prefix="aca-"))
        self._sandbox = await asyncio.to_thread(
            Sandbox.resolve, self.sandbox_mode, bwrap_path=self.bwrap_path, limits=self.limits
        )
        if self.pool_type == "PythonLTS":
            mpl_cache = self._private / "mpl"
            if not await asyncio.to_thread(_copy_matplotlib_cache, mpl_cache):
                self._tasks.append(asyncio.ensure_future(_build_matplotlib_cache(mpl_cache)))
            if self._launcher is None:
                self._launcher = PlainKernelLauncher(
                    self._sandbox, egress=self.egress, hide=self._hidden(), mpl_cache=mpl_cache
                )
        self._info_task = asyncio.ensure_future(
            asyncio.to_thread(_runtime_info, self.pool_type, self.created_at)
        )
        self._tasks.append(asyncio.ensure_future(self._fill_ready()))
        self._tasks.append(asyncio.ensure_future(self._reap()))

    async def close(self) -> None:
        """Kill every kernel (ready ones too) and remove every directory this manager made."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        sessions = list(self._sessions.values())
        self._sessions.clear()
        ready = list(self._ready)
        self._ready.clear()
        try:
            await asyncio.gather(
                *(session._close() for session in sessions),
                *(self._discard_slot(slot) for slot in ready),
                return_exceptions=True,
            )
            while self._background:
                await asyncio.gather(*list(self._background), return_exceptions=True)
            # Calls that were running end within a poll interval of their kernel's death;
            # their sockets must be closed before the shared context goes.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(s._wait_idle() for s in sessions)), timeout=10)
        finally:
            # Whatever failed above, the directories go (kernels die with their sandboxes).
            if self._zmq_context is not None:
                with contextlib.suppress(Exception):
                    self._zmq_context.destroy(linger=0)
                self._zmq_context = None
            for path in (self._private, self._run_base, self.root / "sessions"):
                if path is not None:
                    await asyncio.to_thread(shutil.rmtree, path, True)
            if self._made_root:
                with contextlib.suppress(OSError):
                    self.root.rmdir()

    async def __aenter__(self) -> SessionManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sessions ---------------------------------------------------------------------------

    async def get_or_create(self, identifier: str) -> Session:
        """The session named ``identifier``, made now if it does not exist (touches it)."""
        if not self._started or self._closed:
            raise RuntimeError("the session manager is not running")
        session = self._sessions.get(identifier)
        if session is not None:
            session.touch()
            return session
        if len(self._sessions) >= self.max_concurrent_sessions:
            raise PoolFullError(self.max_concurrent_sessions)
        slot = self._take_ready_slot() or self._new_slot()
        session = Session(self, identifier, slot)
        self._sessions[identifier] = session
        self._refill.set()
        return session

    def get(self, identifier: str) -> Session | None:
        """The session named ``identifier`` if it exists; never makes one, does not touch."""
        return self._sessions.get(identifier)

    async def delete(self, identifier: str) -> bool:
        """Delete a session now (frees its slot at once); False if there was none."""
        session = self._sessions.pop(identifier, None)
        if session is None:
            return False
        await session._close()
        return True

    def sessions(self) -> list[Session]:
        """The current sessions, oldest first."""
        return sorted(self._sessions.values(), key=lambda s: s.created_at)

    def metadata(self) -> PoolRuntimeInfo:
        """Runtimes, pre-installed packages and kernel of this pool (after :meth:`start`)."""
        if self._info is None:
            if self._info_task is None:
                raise RuntimeError("SessionManager.start() has not been called")
            if self._info_task.done():
                self._info = self._info_task.result()
            else:
                # Asked for in the first moments after start: work it out here (~0.1 s, once).
                self._info = _runtime_info(self.pool_type, self.created_at)
        return self._info

    @property
    def ready_count(self) -> int:
        """Kernels started and waiting for a new identifier."""
        return len(self._ready)

    # -- slots and kernels --------------------------------------------------------------------

    def _hidden(self) -> list[Path]:
        hidden = [self.root, *self.hide_paths]
        if self._run_base is not None:
            hidden.append(self._run_base)
        return hidden

    def _new_slot(self) -> _Slot:
        slot_id = uuid.uuid4().hex[:12]
        home = self.root / "sessions" / slot_id
        data_dir = home / "data"
        data_dir.mkdir(parents=True)
        uid = None
        if self.sandbox.drops_privileges:
            uid = SESSION_UID_BASE + self._uid_counter % SESSION_UID_SPAN
            self._uid_counter += 1
            os.chown(data_dir, uid, uid)
        return _Slot(slot_id=slot_id, home=home, data_dir=data_dir, uid=uid)

    def _take_ready_slot(self) -> _Slot | None:
        while self._ready:
            slot = self._ready.popleft()
            if slot.kernel is not None and slot.kernel.alive:
                return slot
            self._spawn(self._discard_slot(slot))
        return None

    async def _start_kernel(self, slot: _Slot) -> Kernel:
        assert self._launcher is not None
        assert self._run_base is not None
        # A burst of new sessions must not start dozens of interpreters at once: on a
        # small machine each would then take longer than the start timeout.
        async with self._start_gate:
            run_dir = self._run_base / uuid.uuid4().hex[:8]
            launched = await self._launcher.launch(data_dir=slot.data_dir, run_dir=run_dir, uid=slot.uid)
            if self._zmq_context is None:
                self._zmq_context = client_context()
            kernel = Kernel(launched, context=self._zmq_context)
            try:
                await kernel.wait_ready(self.kernel_start_timeout)
            except BaseException:
                await kernel.kill()
                raise
        logger.debug("kernel for slot %s ready in %.3f s", slot.slot_id, kernel.ready_seconds or 0)
        return kernel

    async def _discard_slot(self, slot: _Slot) -> None:
        starting = slot.starting
        slot.starting = None
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(BaseException):
                kernel = await starting
                await kernel.kill()
        if slot.kernel is not None:
            kernel, slot.kernel = slot.kernel, None
            await kernel.kill()
        await asyncio.to_thread(shutil.rmtree, slot.home, True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fill_ready(self) -> None:
        """Keep ``ready_sessions`` kernels started, one start at a time."""
        if self.pool_type != "PythonLTS":
            return
        failures = 0
        while not self._closed:
            if len(self._ready) >= self.ready_sessions:
                self._refill.clear()
                await self._refill.wait()
                continue
            slot = self._new_slot()
            try:
                slot.kernel = await self._start_kernel(slot)
            except asyncio.CancelledError:
                await self._discard_slot(slot)
                raise
            except Exception as exc:
                failures += 1
                logger.warning("could not start a ready kernel (%s); retrying", exc)
                await self._discard_slot(slot)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            failures = 0
            self._ready.append(slot)

    async def _reap(self) -> None:
        """Delete sessions idle for longer than the cooldown period."""
        interval = min(5.0, max(0.05, self.cooldown_period_seconds / 4))
        while not self._closed:
            await asyncio.sleep(interval)
            for identifier, session in list(self._sessions.items()):
                if session.busy or session._idle_seconds() < self.cooldown_period_seconds:
                    continue
                if self._sessions.get(identifier) is session:
                    del self._sessions[identifier]
                    logger.info("session %s expired after %.0f s idle", identifier, session._idle_seconds())
                    self._spawn(session._close())

    # -- shell ------------------------------------------------------------------------------

    async def _run_shell(
        self, slot: _Slot, command: str, timeout: float, max_output_chars: int
    ) -> ShellOutput:
        sandbox = self.sandbox
        cgroup = None
        if sandbox.cgroup is not None and sandbox.limits.max_processes is not None:
            with contextlib.suppress(OSError):
                cgroup = sandbox.cgroup.create(f"sh{uuid.uuid4().hex[:10]}", sandbox.limits.max_processes)
        inner_data = sandbox.data_mount or str(slot.data_dir)
        # The command goes in a file, never in argv: one argument may be at most 128 KiB
        # (E2BIG), and stdin stays /dev/null so that a command reading it cannot eat its own
        # rest. The file lives in a private run dir shown at /run/aca, like a kernel's.
        assert self._run_base is not None
        run_dir = self._run_base / f"sh{uuid.uuid4().hex[:10]}"
        uid = slot.uid if sandbox.drops_privileges else None
        await asyncio.to_thread(_write_shell_script, run_dir, command, uid)
        inner_run = SANDBOX_RUN_DIR if sandbox.isolation == "bwrap" else str(run_dir)
        spec = sandbox.boot_spec(
            "exec",
            uid=slot.uid,
            with_nproc=cgroup is None or sandbox.drops_privileges,
            argv=["bash", os.path.join(inner_run, _SHELL_SCRIPT)],
            die_with_parent=sandbox.isolation != "bwrap",
        )
        env = kernel_environment(data_dir=inner_data, run_dir="/tmp")
        env["PYTHONUNBUFFERED"] = "1"
        cmd = sandbox.command(
            spec,
            data_dir=slot.data_dir,
            run_dir=run_dir,
            hide=self._hidden(),
            egress=self.egress,
            env=env,
            cgroup_procs=cgroup / "cgroup.procs" if cgroup is not None else None,
        )
        started = time.monotonic()
        stdout = OutputBuffer(max_output_chars)
        stderr = OutputBuffer(max_output_chars)
        timed_out = False
        try:
            process = await asyncio.create_subprocess_exec(
                *cmd.argv,
                cwd=str(cmd.cwd),
                env=cmd.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            assert process.stdout is not None
            assert process.stderr is not None

            async def pump(stream: asyncio.StreamReader, into: OutputBuffer) -> None:
                decoder = _Utf8Decoder()
                while True:
                    chunk = await stream.read(65536)
                    if not chunk:
                        into.write(decoder.finish())
                        return
                    into.write(decoder.feed(chunk))

            pumps = asyncio.gather(pump(process.stdout, stdout), pump(process.stderr, stderr))
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), timeout=timeout)
            except asyncio.TimeoutError:
                timed_out = True
            finally:
                if process.returncode is None or timed_out:
                    kill_process_group(process)
                    await process.wait()
            # A background child may hold the pipes open; do not wait for it beyond a moment.
            try:
                await asyncio.wait_for(pumps, timeout=1.0)
            except asyncio.TimeoutError:
                pumps.cancel()
                with contextlib.suppress(BaseException):
                    await pumps
            exit_code = process.returncode if process.returncode is not None else -1
            if exit_code < 0 and not timed_out:
                exit_code = 128 - exit_code
        finally:
            if cgroup is not None:
                await asyncio.to_thread(_remove_cgroup, cgroup)
            await asyncio.to_thread(shutil.rmtree, run_dir, True)
        if timed_out:
            exit_code = _SHELL_TIMEOUT_EXIT
            note = f"Command timed out after {timeout:g} s and was killed.\n"
            stderr.write(note)
        return ShellOutput(
            exit_code=exit_code,
            stdout=stdout.text(),
            stderr=stderr.text(),
            stdout_length=stdout.total,
            stderr_length=stderr.total,
            duration_ms=int((time.monotonic() - started) * 1000),
            timed_out=timed_out,
        )


class _Utf8Decoder:
    """Decodes a byte stream that may split characters across chunks."""

    def __init__(self) -> None:
        import codecs

        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def finish(self) -> str:
        return self._decoder.decode(b"", final=True)


def _write_shell_script(run_dir: Path, command: str, uid: int | None) -> None:
    """Put ``command`` in ``run_dir``, readable only by the session's uid (or the server's)."""
    run_dir.mkdir(mode=0o700)
    script = run_dir / _SHELL_SCRIPT
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
        handle.write(command)
    if uid is not None:
        os.chown(run_dir, uid, uid)
        os.chown(script, uid, uid)


def _remove_cgroup(group: Path) -> None:
    from .sandbox import PidsCgroup

    PidsCgroup.remove(group)


def _copy_matplotlib_cache(directory: Path) -> bool:
    """Give kernels the server user's matplotlib font list, if it has one (True when copied).

    Without it every kernel spends seconds building its own on the first pyplot import.
    """
    directory.mkdir(parents=True, exist_ok=True)
    env_dir = os.environ.get("MPLCONFIGDIR")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for source in (Path(env_dir) if env_dir else None, Path(xdg) / "matplotlib"):
        if source is None or not source.is_dir():
            continue
        copied = False
        for entry in source.glob("fontlist-*.json"):
            shutil.copy2(entry, directory / entry.name)
            copied = True
        if copied:
            return True
    return False


async def _build_matplotlib_cache(directory: Path) -> None:
    """Build the font list once, in the background; kernels started meanwhile build their own."""
    env = dict(os.environ, MPLCONFIGDIR=str(directory), MPLBACKEND="Agg")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import matplotlib.font_manager",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        logger.warning("could not build the matplotlib font cache: %s", exc)
        return
    try:
        await process.wait()
    finally:
        if process.returncode is None:
            kill_process_group(process)
            await process.wait()


def _runtime_info(pool_type: str, created_at: datetime) -> PoolRuntimeInfo:
    """Runtime facts of the kernel's interpreter (the server's own: it is the same one)."""
    packages: dict[str, NameVersion] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata is not None else None
        if not name:
            continue
        key = name.lower().replace("_", "-")
        packages.setdefault(key, NameVersion(name=name, version=dist.version or ""))
    ordered = [packages[key] for key in sorted(packages)]
    if pool_type == "Shell":
        bash_version = ""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["bash", "-c", "echo $BASH_VERSION"], capture_output=True, timeout=10, check=False, text=True
            )
            bash_version = out.stdout.strip()
        return PoolRuntimeInfo(
            runtimes=[NameVersion("bash", bash_version)],
            pre_installed_packages=ordered,
            jupyter_kernel=None,
            created_at=created_at,
            last_updated_at=created_at,
        )
    try:
        ipykernel_version = importlib.metadata.version("ipykernel")
    except importlib.metadata.PackageNotFoundError:
        ipykernel_version = ""
    python_version = ".".join(str(p) for p in sys.version_info[:3])
    try:
        from ipykernel._version import kernel_protocol_version as protocol_version
    except ImportError:
        protocol_version = ""
    return PoolRuntimeInfo(
        runtimes=[NameVersion("Python", python_version)],
        pre_installed_packages=ordered,
        jupyter_kernel=KernelInfo(
            name="python3",
            version=ipykernel_version,
            display_name="Python 3 (ipykernel)",
            language="python",
            language_version=python_version,
            protocol_version=str(protocol_version),
        ),
        created_at=created_at,
        last_updated_at=created_at,
    )
