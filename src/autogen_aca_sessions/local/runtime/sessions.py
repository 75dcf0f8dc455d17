"""The local pool's sessions: one sandboxed kernel (or shell) and one data directory per identifier.

:class:`SessionManager` is the only thing the HTTP layer talks to (see ``docs/design.md``
section 2). It keeps ``ready_sessions`` kernels started ahead of need so that a new
identifier gets one at once, reaps sessions idle for ``cooldown_period_seconds``, and
never lets more than ``max_concurrent_sessions`` exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import zmq
import zmq.asyncio

from ..config import Isolation, KernelLauncherKind, PoolConfig
from ..limits import MAX_OUTPUT_CHARS
from . import capacity
from ._kernel_template_launcher import PLAIN_WHILE_STARTING, TemplateKernelLauncher
from .bubblewrap import BWRAP_PATH, SESSION_UID_BASE, SESSION_UID_SPAN, Sandbox
from .egress import EgressGateway, EgressPolicy
from .kernel import (
    Kernel,
    KernelLauncher,
    KernelStartError,
    PlainKernelLauncher,
    client_context,
    stop_launched,
)
from .matplotlib_cache import prepare_matplotlib_cache
from .metadata import KernelInfo, NameVersion, PoolRuntimeInfo, runtime_info
from .outcome import CodeOutput, Outcome, ResourcesExhaustedError, SessionLimitReached, ShellOutput
from .session_files import DirectoryFiles
from .shell import ShellRunner

__all__ = [
    "EGRESS_POOL_ID",
    "KernelInfo",
    "NameVersion",
    "PoolRuntimeInfo",
    "Session",
    "SessionHost",
    "SessionManager",
]

logger = logging.getLogger(__name__)

EGRESS_POOL_ID = "pool"
"""The egress gateway's name for a pool's sessions: one policy (the allowlist) and one decisions
log for the pool, one network namespace per session."""


REFILL_DELAY_SECONDS = 0.1
"""How long after a new session took a ready kernel the filler starts its replacement (see
:meth:`SessionManager._refill_soon`): with the start deferred past the session's first call,
that call's p50 went from 21-24 ms to 12-15 ms on a 2-core machine (issue 21)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


KernelStarter = Callable[[Path, "int | None"], Awaitable[Kernel]]
"""Starts a kernel for a data directory and uid; returns once it answers."""


class _Slot:
    """A data directory and, for Python pools, the kernel started for it.

    The slot is the one writer of its kernel and of the start in progress: the manager makes a slot
    (and keeps it while it waits as a ready one), the session given it drives its kernel through
    :meth:`live_kernel` and :meth:`restart`, and :meth:`release` ends it. Nobody else assigns its
    fields, so a restart cannot race a release into a kernel nobody kills.
    """

    def __init__(
        self, slot_id: str, home: Path, data_dir: Path, uid: int | None, start: KernelStarter
    ) -> None:
        self.slot_id = slot_id
        """A short random name (its directory's)."""
        self.home = home
        """The slot's own directory (removed on release)."""
        self.data_dir = data_dir
        """What session code sees as ``/mnt/data``."""
        self.uid = uid
        """The host uid its code runs as (``None`` when the sandbox does not switch users)."""
        self.shell_groups: set[int] = set()
        """Process groups of the shell commands running in this slot (killed on release)."""
        self.claimed = False
        """Whether a session was given the slot while the manager was still filling it."""
        self._start = start
        self._kernel: Kernel | None = None
        self._starting: asyncio.Task[Kernel] | None = None
        self._released = False

    @property
    def kernel(self) -> Kernel | None:
        """The slot's kernel (``None`` before it starts, while it is replaced, and in Shell pools)."""
        return self._kernel

    @property
    def ready(self) -> bool:
        """Whether a live kernel waits in this slot."""
        return self._kernel is not None and self._kernel.alive

    async def fill(self) -> None:
        """Start the slot's kernel now (a ready slot: the manager waits for it).

        The start is the slot's own task, shared with :meth:`live_kernel`: a session given the
        slot while it fills (:attr:`claimed`) waits for the same kernel instead of starting one.
        """
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start(self.data_dir, self.uid))
        task = self._starting
        try:
            kernel = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the filler was cancelled, not the start
            raise KernelStartError("the slot was released while its kernel started") from None
        finally:
            if self._starting is task and task.done():
                self._starting = None
        if self._kernel is None and not self._released:
            self._kernel = kernel

    async def live_kernel(self) -> tuple[Kernel, bool]:
        """The live kernel, starting one if needed; True when the last one died between calls."""
        died = False
        if self._kernel is not None and not self._kernel.alive:
            # It died between calls (killed from outside, OOM): the caller must hear of it.
            dead, self._kernel = self._kernel, None
            died = True
            await dead.kill()
        if self._kernel is None:
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._start(self.data_dir, self.uid))
            task = self._starting
            try:
                kernel = await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise  # our caller was cancelled, not the start
                raise KernelStartError("the session was deleted while its kernel started") from None
            finally:
                if self._starting is task and task.done():
                    self._starting = None
            self._kernel = kernel
        return self._kernel, died

    def restart(self, dead: Kernel, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        """Kill ``dead`` in the background (``spawn``) and start its replacement at once, so the
        next call waits as little as possible."""
        if self._kernel is dead:
            self._kernel = None
        spawn(dead.kill())
        if not self._released:
            self._starting = asyncio.ensure_future(self._start(self.data_dir, self.uid))

    async def release(self) -> None:
        """Kill the kernel (or its start) and running commands, and remove the slot's directories."""
        self._released = True
        for group in list(self.shell_groups):  # a deleted session's commands end with it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(BaseException):
                kernel = await starting
                await kernel.kill()
        if self._kernel is not None:
            kernel, self._kernel = self._kernel, None
            await kernel.kill()
        await asyncio.to_thread(shutil.rmtree, self.home, True)


class SessionHost(Protocol):
    """What a :class:`Session` needs of its manager, and all it may use of it."""

    @property
    def config(self) -> PoolConfig:
        """The pool's configuration (time cap, cooldown, pool type)."""
        ...

    async def run_shell(
        self,
        command: str,
        *,
        data_dir: Path,
        uid: int | None,
        groups: set[int],
        timeout: float,
        max_output_chars: int,
    ) -> ShellOutput:
        """Run a shell command in the sandbox of a session's data directory; its process group
        is in ``groups`` while it runs."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; the manager waits for it on close."""
        ...

    async def forget(self, session: Session) -> None:
        """Drop ``session``, which never got a kernel (its start ran out of a resource)."""
        ...


class Session:
    """One session: its data directory, its kernel, and its idle timer."""

    def __init__(self, host: SessionHost, identifier: str, slot: _Slot) -> None:
        self._host = host
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
        self.files = DirectoryFiles(slot.data_dir)
        """Its files, as the frontends reach them (:class:`~.protocol.SessionFiles`)."""
        self._lock = asyncio.Lock()
        self._last_touch = time.monotonic()
        self._closed = False
        self._state_lost_unreported = False
        self._ran = False
        self.kernel_restarts = 0
        """How many times the kernel was replaced (timeout kills, deaths)."""

    @property
    def kernel(self) -> Kernel | None:
        """The session's kernel (``None`` in Shell pools, or while it is replaced); read-only."""
        return self._slot.kernel

    @property
    def expire_at(self) -> datetime:
        """When the session will be deleted unless touched again."""
        config = self._host.config
        idle_end = self.last_accessed_at + timedelta(seconds=config.cooldown_period_seconds)
        if config.max_alive_period_seconds is None:
            return idle_end
        return min(idle_end, self.created_at + timedelta(seconds=config.max_alive_period_seconds))

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

    @property
    def idle_seconds(self) -> float:
        """Seconds since a request last named the session."""
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
            return CodeOutput.kernel_died("The session was deleted while this call waited.")
        if self._host.config.is_shell:
            raise RuntimeError("this is a Shell pool: use run_shell")
        try:
            kernel, state_lost = await self._kernel()
        except KernelStartError as exc:
            return CodeOutput.kernel_died(f"A kernel could not be started for this session: {exc}")
        except ResourcesExhaustedError:
            if not self._ran and not await asyncio.to_thread(_has_entries, self.data_dir):
                # Nothing of it exists but its name: it does not hold a place in the pool.
                await self._host.forget(self)
            raise
        self._ran = True
        timeout = max(0.0, min(timeout, self._host.config.max_execution_seconds))
        max_output_chars = max(0, min(max_output_chars, MAX_OUTPUT_CHARS))
        output = await kernel.execute(code, timeout=timeout, max_output_chars=max_output_chars)
        if output.outcome in (Outcome.TIMED_OUT_RESTARTED, Outcome.KERNEL_DIED):
            self._replace_kernel(kernel)
        output.state_lost = output.state_lost or state_lost
        return output

    async def _kernel(self) -> tuple[Kernel, bool]:
        """The live kernel, starting one if needed; True when state was lost unreported."""
        kernel, died = await self._slot.live_kernel()
        if died:
            self._state_lost_unreported = True
            self.kernel_restarts += 1
        lost = self._state_lost_unreported
        self._state_lost_unreported = False
        return kernel, lost

    def _replace_kernel(self, dead: Kernel) -> None:
        """Start the replacement now, so the next call waits as little as possible."""
        self.kernel_restarts += 1
        self._slot.restart(dead, self._host.spawn)

    async def run_shell(self, command: str, *, timeout: float, max_output_chars: int) -> ShellOutput:
        """Run ``bash -c command`` in the session's sandbox with its data directory as cwd."""
        self.touch()
        async with self._lock:
            try:
                if self._closed:
                    return ShellOutput(
                        exit_code=-1, stderr="The session was deleted while this call waited.\n"
                    )
                timeout = max(0.0, min(timeout, self._host.config.max_execution_seconds))
                cap = max(0, min(max_output_chars, MAX_OUTPUT_CHARS))
                slot = self._slot
                return await self._host.run_shell(
                    command,
                    data_dir=slot.data_dir,
                    uid=slot.uid,
                    groups=slot.shell_groups,
                    timeout=timeout,
                    max_output_chars=cap,
                )
            finally:
                self.touch()

    async def wait_idle(self) -> None:
        """Return once calls queued on this session before now have ended."""
        async with self._lock:
            pass

    async def close(self) -> None:
        """Mark the session deleted and free its kernel and directories (its manager calls this)."""
        self._closed = True
        await self._slot.release()


def _has_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


class SessionManager:
    """All sessions of one local pool; see ``docs/design.md`` section 2.

    ``config`` is the pool's :class:`~.config.PoolConfig` (the same value the HTTP layer is
    given). The manager is the one owner of the sandbox: :meth:`start` resolves
    ``config.sandbox`` once and makes the kernel launcher ``config.kernel_launcher`` names
    with it. Besides:

    - ``bwrap_path``: the bubblewrap binary (tests point it at a missing file).
    - ``launcher``: a :class:`~.kernel.KernelLauncher` to use instead of making one (the
      caller owns and closes it).
    - ``kernel_start_timeout``: how long a kernel may take to answer after its start.
    - ``hide_paths``: more host directories session code must not see (the server's
      private files); ``root``, the homes and the server's working directory always are.
    - ``zmq_max_sockets``: the size of the kernels' ZeroMQ context (default: enough for
      ``max_concurrent_sessions`` and the ready kernels; see :mod:`.capacity`).

    With ``sandbox="none"`` (or ``"auto"`` without a working bwrap) code runs as the
    server's user with its session's data directory as working directory: relative
    paths work, absolute ``/mnt/data/...`` paths do not, and nothing stops code from
    reading the host's files or reaching its network. :attr:`isolation` says which.
    """

    def __init__(
        self,
        *,
        root: Path,
        config: PoolConfig | None = None,
        bwrap_path: str = BWRAP_PATH,
        launcher: KernelLauncher | None = None,
        kernel_start_timeout: float = 60.0,
        hide_paths: Sequence[Path] = (),
        zmq_max_sockets: int | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        """Where session data directories are made (``<root>/sessions/<slot>/data``)."""
        self.config = config if config is not None else PoolConfig()
        """The pool's configuration (replace it whole to change a setting of a running pool)."""
        self.bwrap_path = bwrap_path
        self.kernel_start_timeout = kernel_start_timeout
        """How long a kernel may take to answer after its start."""
        self.hide_paths = [Path(p).absolute() for p in hide_paths]
        """Host directories session code must not see besides ``root`` (the server's private files)."""
        self._launcher = launcher
        self._owned_launcher: TemplateKernelLauncher | None = None
        self._shell: ShellRunner | None = None
        self._hidden: tuple[Path, ...] = ()
        self._sandbox: Sandbox | None = None
        self._sessions: dict[str, Session] = {}
        self._ready: deque[_Slot] = deque()
        self._filling: _Slot | None = None
        """The slot whose kernel the filler is starting (a new session may take it over)."""
        self._refill = asyncio.Event()
        self._refill_timer: asyncio.TimerHandle | None = None
        self._first_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._made_root = False
        self._run_base: Path | None = None
        self._egress: EgressGateway | None = None
        self._private: Path | None = None
        self._info: PoolRuntimeInfo | None = None
        self._info_task: asyncio.Future[PoolRuntimeInfo] | None = None
        self._zmq_context: zmq.asyncio.Context | None = None
        self.zmq_max_sockets = zmq_max_sockets or capacity.zmq_socket_budget(
            self.config.max_concurrent_sessions, self.config.ready_sessions
        )
        """Sockets the kernels' shared ZeroMQ context may hold (sized for the pool's maximum, at least
        Azure's 600: :meth:`reconfigure` may raise the maximum, the context's size is fixed)."""
        self._fds = capacity.FdBudget()
        self._exhausted_logged: set[str] = set()
        self._start_gate = asyncio.Semaphore(max(2, os.cpu_count() or 2))
        self._started = False
        self._closed = False
        self._uid_counter = int.from_bytes(os.urandom(3), "big")
        self.created_at = _utcnow()
        """When the manager was made."""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def isolation(self) -> Isolation:
        """``bwrap`` or ``none``: the confinement actually in force (after :meth:`start`)."""
        return self._sandbox.isolation if self._sandbox is not None else Isolation.NONE

    @property
    def sandbox(self) -> Sandbox:
        """The resolved sandbox (after :meth:`start`)."""
        if self._sandbox is None:
            raise RuntimeError("SessionManager.start() has not been called")
        return self._sandbox

    @property
    def hidden_paths(self) -> tuple[Path, ...]:
        """Every host directory session code must not see (computed once, on :meth:`start`)."""
        return self._hidden

    @property
    def unsandboxed_warning(self) -> str | None:
        """The warning logged when code runs without a sandbox although one was wanted."""
        return self._sandbox.warning if self._sandbox is not None else None

    async def start(self) -> None:
        """Resolve the sandbox, fill the ready pool (in the background), start the reaper."""
        if self._started:
            return
        self._started = True
        config = self.config
        if not self.root.exists():
            self._made_root = True
        (self.root / "sessions").mkdir(parents=True, exist_ok=True)
        self._private = Path(tempfile.mkdtemp(prefix=".aca-private-", dir=self.root))
        # Unix socket paths are limited to ~107 bytes, so runtime dirs live in a short path.
        self._run_base = Path(tempfile.mkdtemp(prefix="aca-", dir=_short_temp_dir()))
        self._hidden = (self.root, *self.hide_paths, self._run_base)
        self._sandbox = await asyncio.to_thread(
            Sandbox.resolve, config.sandbox, bwrap_path=self.bwrap_path, limits=config.limits
        )
        await self._open_egress_gate()
        self._shell = ShellRunner(
            self._sandbox, run_base=self._run_base, hidden=self._hidden, egress=config.egress
        )
        if not config.is_shell:
            await asyncio.to_thread(self._size_for_sessions)
            mpl_cache = self._private / "mpl"
            building = await prepare_matplotlib_cache(mpl_cache)
            if building is not None:
                self._tasks.append(building)
            if self._launcher is None:
                self._launcher = await self._make_launcher(mpl_cache)
        self._info_task = asyncio.ensure_future(
            asyncio.to_thread(runtime_info, config.pool_type, self.created_at)
        )
        if config.is_shell or config.ready_sessions == 0:
            # No kernel is kept ready: a new session waits for nothing but its own start.
            self._first_ready.set()
        self._tasks.append(asyncio.ensure_future(self._fill_ready()))
        self._tasks.append(asyncio.ensure_future(self._reap()))

    async def _open_egress_gate(self) -> None:
        """Attach the pool to an egress proxy when it has an allowlist (a local extension)."""
        config = self.config
        if config.egress_allowlist is None or config.egress:
            return
        if not self.sandbox.sandboxed:
            # Without a network namespace nothing could be enforced: refuse rather than open up.
            raise RuntimeError(
                "egress_allowlist needs bubblewrap (a network namespace per session); this pool "
                f"runs without a sandbox ({self.sandbox.warning or 'sandbox=none'})"
            )
        assert self._run_base is not None
        self._egress = EgressGateway(self._run_base / "egress")
        attachment = await self._egress.attach(
            EGRESS_POOL_ID, EgressPolicy.allow_hosts(config.egress_allowlist)
        )
        self.sandbox.egress_gate = attachment

    @property
    def egress_gateway(self) -> EgressGateway | None:
        """The pool's egress proxy (its decisions are under :data:`EGRESS_POOL_ID`), if it has one."""
        return self._egress

    def protect_port(self, port: int) -> None:
        """Never let sessions reach ``port`` on this machine through the egress proxy (a server port)."""
        if self._egress is not None:
            self._egress.protect(port)

    def _size_for_sessions(self) -> None:
        """Raise the open-file limit, size the ZeroMQ context, and say if the machine holds too few."""
        soft, _ = capacity.raise_open_file_limit()
        limit = capacity.zmq_socket_limit()
        if self.zmq_max_sockets > limit:
            logger.warning(
                "ZeroMQ allows at most %d sockets per context, not %d", limit, self.zmq_max_sockets
            )
            self.zmq_max_sockets = limit
        self._zmq_context = client_context(self.zmq_max_sockets)
        config = self.config
        launcher = config.kernel_launcher.value
        room = capacity.Capacity.measure(
            zmq_sockets=self.zmq_max_sockets, ready_sessions=config.ready_sessions, launcher=launcher
        )
        shortfalls = room.shortfalls(config.max_concurrent_sessions, launcher=launcher)
        if shortfalls:
            logger.warning(
                "this machine cannot hold max_concurrent_sessions=%d: %s; past that, new sessions are "
                "refused (404) and calls that need a new kernel get 503",
                config.max_concurrent_sessions,
                "; ".join(shortfalls),
            )
        logger.debug("open-file limit %d, ZeroMQ sockets %d, capacity %s", soft, self.zmq_max_sockets, room)

    async def _make_launcher(self, mpl_cache: Path) -> KernelLauncher:
        """The launcher the configuration names, with this manager's sandbox and hidden paths."""
        sandbox = self.sandbox
        if self.config.kernel_launcher is KernelLauncherKind.FORK:
            launcher = TemplateKernelLauncher(
                sandbox=sandbox,
                egress=self.config.egress,
                hide_paths=self._hidden,
                plain_while_starting=PLAIN_WHILE_STARTING,
                mpl_cache=mpl_cache,
            )
            self._owned_launcher = launcher
            return launcher
        return PlainKernelLauncher(
            sandbox, egress=self.config.egress, hide_paths=self._hidden, mpl_cache=mpl_cache
        )

    async def close(self) -> None:
        """Kill every kernel (ready ones too) and remove every directory this manager made."""
        if self._closed:
            return
        self._closed = True
        if self._refill_timer is not None:
            self._refill_timer.cancel()
            self._refill_timer = None
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
                *(session.close() for session in sessions),
                *(slot.release() for slot in ready),
                return_exceptions=True,
            )
            while self._background:
                await asyncio.gather(*list(self._background), return_exceptions=True)
            # Calls that were running end within a poll interval of their kernel's death;
            # their sockets must be closed before the shared context goes.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(s.wait_idle() for s in sessions)), timeout=10)
        finally:
            if self._egress is not None:
                with contextlib.suppress(Exception):
                    await self._egress.close()
            if self._owned_launcher is not None:
                try:
                    await self._owned_launcher.close()
                except Exception:
                    logger.exception("closing the kernel template failed")
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

    def reconfigure(self, config: PoolConfig) -> None:
        """Replace the configuration of the running pool by ``config``.

        Limits (sessions, ready kernels, cooldown, execution cap) take effect at once; what the
        runtime was built with (pool type, sandbox, egress, kernel launcher) cannot change here
        (``ValueError``): that needs a new manager.
        """
        fixed = ("pool_type", "sandbox", "egress", "kernel_launcher", "limits")
        changed = [name for name in fixed if getattr(config, name) != getattr(self.config, name)]
        if (config.egress_allowlist is None) != (self.config.egress_allowlist is None):
            changed.append("egress_allowlist (on/off)")
        if changed:
            raise ValueError(f"{', '.join(changed)} cannot change on a running pool")
        if self._egress is not None and config.egress_allowlist is not None:
            # A new allowlist applies to the next connection of every running session.
            self._egress.update_policy(EGRESS_POOL_ID, EgressPolicy.allow_hosts(config.egress_allowlist))
        self.config = config
        self._refill.set()  # start (or stop starting) ready kernels for the new count

    async def get_or_create(self, identifier: str) -> Session:
        """The session named ``identifier``, made now if it does not exist (touches it)."""
        if not self._started or self._closed:
            raise RuntimeError("the session manager is not running")
        session = self._sessions.get(identifier)
        if session is not None:
            session.touch()
            return session
        if len(self._sessions) >= self.config.max_concurrent_sessions:
            raise SessionLimitReached(self.config.max_concurrent_sessions)
        # A ready kernel (or the one the filler is starting) holds its descriptors already.
        slot = self._take_ready_slot() or self._claim_filling_slot()
        if slot is None and not self.config.is_shell:
            fits, open_fds, soft = self._fds.admits()
            if not fits:
                self._log_exhausted("open files", f"{open_fds} of the server's {soft} descriptors are in use")
                raise SessionLimitReached(
                    self.config.max_concurrent_sessions,
                    f"The local session pool cannot hold another session: {open_fds} of the server's "
                    f"{soft} open files are in use and a session needs {capacity.FDS_PER_SESSION}, with "
                    f"{capacity.FD_RESERVE} kept for the {len(self._sessions)} sessions it holds. Delete a "
                    "session or wait for an idle one to expire (or raise the server's open-file limit).",
                )
        session = Session(self, identifier, slot or self._new_slot())
        self._sessions[identifier] = session
        self._refill_soon()
        return session

    def get(self, identifier: str) -> Session | None:
        """The session named ``identifier`` if it exists; never makes one, does not touch."""
        return self._sessions.get(identifier)

    async def forget(self, session: Session) -> None:
        """Drop a session that never got a kernel (its start ran out of a resource)."""
        if self._sessions.get(session.identifier) is session:
            del self._sessions[session.identifier]
            await session.close()

    def _log_exhausted(self, resource: str, detail: str) -> None:
        """Log a resource running out once, until a kernel starts again."""
        if resource not in self._exhausted_logged:
            self._exhausted_logged.add(resource)
            logger.warning(
                "the local session pool ran out of %s (%s) with %d sessions held; new sessions are "
                "refused until some are deleted or expire",
                resource,
                detail,
                len(self._sessions),
            )

    async def delete(self, identifier: str) -> bool:
        """Delete a session now (frees its slot at once); False if there was none."""
        session = self._sessions.pop(identifier, None)
        if session is None:
            return False
        await session.close()
        return True

    def sessions(self) -> list[Session]:
        """The current sessions, oldest first."""
        return sorted(self._sessions.values(), key=lambda s: s.created_at)

    async def runtime_info(self) -> PoolRuntimeInfo:
        """:meth:`metadata` for the runtime protocol (its first answer may take ~0.1 s of work)."""
        if self._info is not None:
            return self._info
        return await asyncio.to_thread(self.metadata)

    def metadata(self) -> PoolRuntimeInfo:
        """Runtimes, pre-installed packages and kernel of this pool (after :meth:`start`)."""
        if self._info is None:
            if self._info_task is None:
                raise RuntimeError("SessionManager.start() has not been called")
            if self._info_task.done():
                self._info = self._info_task.result()
            else:
                # Asked for in the first moments after start: work it out here (~0.1 s, once).
                self._info = runtime_info(self.config.pool_type, self.created_at)
        return self._info

    async def wait_first_ready(self) -> None:
        """Return once the pool is ready: a kernel has been started and waits for a new identifier
        (at once for a Shell pool or ``ready_sessions=0``, which keep no kernel ready). From then
        on a new session's first call waits for no kernel start, as long as one stays free."""
        await self._first_ready.wait()

    @property
    def ready_count(self) -> int:
        """Kernels started and waiting for a new identifier."""
        return len(self._ready)

    @property
    def template_pid(self) -> int | None:
        """The pid of the fork launcher's template process while it runs (else ``None``)."""
        launcher = self._launcher
        return launcher.template_pid if isinstance(launcher, TemplateKernelLauncher) else None

    # -- slots and kernels --------------------------------------------------------------------

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
        return _Slot(slot_id, home, data_dir, uid, self.start_kernel)

    def _take_ready_slot(self) -> _Slot | None:
        while self._ready:
            slot = self._ready.popleft()
            if slot.ready:
                return slot
            self.spawn(slot.release())
        return None

    def _refill_soon(self) -> None:
        """Let the filler replace a taken ready kernel :data:`REFILL_DELAY_SECONDS` from now.

        Not at once: the next kernel's start (a fork, a sandbox, the kernel's own start-up)
        would share the CPU with the new session's first call, which usually takes 5-20 ms.
        One pending timer covers a burst of new sessions."""
        if self._refill_timer is None and not self._closed:
            self._refill_timer = asyncio.get_running_loop().call_later(REFILL_DELAY_SECONDS, self._refill_now)

    def _refill_now(self) -> None:
        self._refill_timer = None
        self._refill.set()

    def _claim_filling_slot(self) -> _Slot | None:
        """The slot the filler is starting a kernel for, taken over by a new session.

        With no ready kernel, a new session waits for the one already starting rather than
        starting a second at the same time: on a small machine (and while the fork template
        starts, when both would be plain interpreters) two starts at once each take longer.
        """
        slot, self._filling = self._filling, None
        if slot is None:
            return None
        slot.claimed = True
        return slot

    async def start_kernel(self, data_dir: Path, uid: int | None) -> Kernel:
        """Start a kernel for a slot's ``data_dir`` with the pool's launcher; returns once it answers."""
        assert self._launcher is not None
        assert self._run_base is not None
        # A burst of new sessions must not start dozens of interpreters at once: on a
        # small machine each would then take longer than the start timeout.
        async with self._start_gate:
            run_dir = self._run_base / uuid.uuid4().hex[:8]
            try:
                launched = await self._launcher.launch(data_dir=data_dir, run_dir=run_dir, uid=uid)
            except Exception as exc:
                await asyncio.to_thread(shutil.rmtree, run_dir, True)
                raise self._exhausted(exc) from exc
            if self._zmq_context is None:
                self._zmq_context = client_context(self.zmq_max_sockets)
            try:
                kernel = Kernel(launched, context=self._zmq_context)
            except BaseException as exc:
                # Nothing may linger: the process goes at once and its memory with it.
                await stop_launched(launched)
                if isinstance(exc, Exception):
                    raise self._exhausted(exc) from exc
                raise
            try:
                await kernel.wait_ready(self.kernel_start_timeout)
            except BaseException:
                await kernel.kill()
                raise
        self._exhausted_logged.clear()
        logger.debug("kernel for slot %s ready in %.3f s", data_dir.parent.name, kernel.ready_seconds or 0)
        return kernel

    def _exhausted(self, exc: Exception) -> Exception:
        """``exc`` as a :class:`ResourcesExhaustedError` when it says a resource ran out."""
        resource = capacity.exhausted_resource(exc)
        if resource is None:
            return exc
        if resource == "open files" and isinstance(exc, zmq.ZMQError):
            resource = f"ZeroMQ sockets (at most {self.zmq_max_sockets}) or open files"
        self._log_exhausted(resource, f"{type(exc).__name__}: {exc}")
        return ResourcesExhaustedError(resource, f"{type(exc).__name__}: {exc}")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; :meth:`close` waits for it."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fill_ready(self) -> None:
        """Keep ``ready_sessions`` kernels started, one start at a time."""
        if self.config.is_shell:
            return
        failures = 0
        while not self._closed:
            if len(self._ready) >= self.config.ready_sessions:
                self._refill.clear()
                await self._refill.wait()
                continue
            slot = self._new_slot()
            self._filling = slot
            try:
                await slot.fill()
            except asyncio.CancelledError:
                if not slot.claimed:  # a session's slot is released with the session
                    await slot.release()
                raise
            except Exception as exc:
                if slot.claimed:
                    continue  # the session that took the slot over was told; not the filler's
                failures += 1
                if not isinstance(exc, ResourcesExhaustedError):  # already logged, once
                    logger.warning("could not start a ready kernel (%s); retrying", exc)
                await slot.release()
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            finally:
                if self._filling is slot:
                    self._filling = None
            failures = 0
            if not slot.claimed:
                self._ready.append(slot)
                self._first_ready.set()

    async def _reap(self) -> None:
        """Delete sessions idle for longer than the cooldown period, and (when the pool has a
        max alive period) sessions older than it, busy or not."""
        while not self._closed:
            config = self.config  # read each round: reconfigure() may replace it
            shortest = min(config.cooldown_period_seconds, config.max_alive_period_seconds or float("inf"))
            await asyncio.sleep(min(5.0, max(0.05, shortest / 4)))
            now = _utcnow()
            for identifier, session in list(self._sessions.items()):
                max_alive = self.config.max_alive_period_seconds
                too_old = max_alive is not None and (now - session.created_at).total_seconds() >= max_alive
                idle = not session.busy and session.idle_seconds >= self.config.cooldown_period_seconds
                if not (too_old or idle) or self._sessions.get(identifier) is not session:
                    continue
                del self._sessions[identifier]
                if too_old:
                    logger.info("session %s reached its max alive period (%.0f s)", identifier, max_alive)
                else:
                    logger.info("session %s expired after %.0f s idle", identifier, session.idle_seconds)
                self.spawn(session.close())

    # -- what sessions use (SessionHost) ---------------------------------------------------

    async def run_shell(
        self,
        command: str,
        *,
        data_dir: Path,
        uid: int | None,
        groups: set[int],
        timeout: float,
        max_output_chars: int,
    ) -> ShellOutput:
        """Run ``command`` in the sandbox of ``data_dir`` with it as working directory."""
        assert self._shell is not None
        return await self._shell.run(
            command,
            data_dir=data_dir,
            uid=uid,
            timeout=timeout,
            max_output_chars=max_output_chars,
            groups=groups,
        )


_RUN_BASE_MAX_CHARS = 60
"""Longest temporary directory the kernels' socket folders go under: a socket's path below it
(``aca-XXXXXXXX/<session>/k-N`` and zmq's own suffixes) must stay within the ~107 bytes a Unix
socket address holds."""


def _short_temp_dir() -> str:
    """``TMPDIR`` when short enough for socket paths under it, else ``/tmp`` (a long ``TMPDIR``,
    as test runners and CI systems set, made every kernel start fail with "File name too long")."""
    preferred = tempfile.gettempdir()
    if len(preferred) <= _RUN_BASE_MAX_CHARS:
        return preferred
    return "/tmp"
