"""One sandbox: its state machine, commands, files, stop/resume, stats and lifecycle timers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..egress import DecisionLog, EgressPolicy
from .agent_client import AgentGone, OutputCallback
from .container import Container, ContainerHost, command_env
from .disk import copy_disk, disk_usage, remove_tree
from .errors import (
    ConflictingOperation,
    DiskQuotaExceeded,
    InvalidRequest,
    SandboxError,
    SandboxNotFound,
    SandboxNotRunning,
    SandboxStartFailed,
)
from .files import SandboxFiles
from .models import (
    AutoDeleteTrigger,
    CommandResult,
    FileEntry,
    LifecyclePolicy,
    SandboxInfo,
    SandboxResources,
    SandboxSource,
    SandboxSpec,
    SandboxState,
    SandboxStats,
    StatsSource,
    StoppedReason,
    SuspendMode,
)
from .network import SandboxNetwork

__all__ = ["LocalSandbox"]

logger = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 16 * 1024 * 1024
"""Output kept per stream of one command (the rest is dropped, and the result says so)."""
QUOTA_POLL_SECONDS = 2.0
"""How often a running sandbox's disk usage is measured against its quota."""
DISK_DRAIN_SECONDS = 5.0
"""How long a delete waits for file calls under way before it removes the disk."""
_SHELL = "/bin/bash"
_HOME = "/root"

Materialize = Callable[[Path], Awaitable[None]]
"""Lays out a sandbox's disk from its source at the given (missing) directory."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalSandbox:
    """A sandbox of the local runtime; made by ``SandboxRuntime.create``, never directly."""

    def __init__(
        self,
        host: ContainerHost,
        *,
        group: str,
        sandbox_id: str,
        spec: SandboxSpec,
        resources: SandboxResources,
        home: Path,
        uid: int | None,
        materialize: Materialize,
        on_auto_delete: Callable[[LocalSandbox], Awaitable[None]],
        network: SandboxNetwork,
    ) -> None:
        self._host = host
        self.group = group
        """The group's name."""
        self.id = sandbox_id
        """The sandbox's id."""
        self.spec = spec
        """What its create asked for."""
        self.resources = resources
        """Its limits in force."""
        self.home = home
        """Its directory on the host (``disk/`` inside)."""
        self.disk = home / "disk"
        """Its disk directory (see ``disk.py``)."""
        self.uid = uid
        """The host uid its processes run as (``None`` when the server is not root)."""
        self.files = SandboxFiles(self.disk)
        """Its files API (callers go through the methods below, which check the state)."""
        self.hostname = f"sandbox-{sandbox_id[:8]}"
        """What ``uname -n`` says inside."""
        self._materialize = materialize
        self._on_auto_delete = on_auto_delete
        self._lifecycle = spec.lifecycle
        self.network = network
        """Its egress: policy, decisions, and the door to the proxy while a run exists."""
        self._state = SandboxState.CREATING
        self._stopped_reason: StoppedReason | None = None
        self._stopped_at: datetime | None = None
        self._stopped_mono: float | None = None
        self.created_at = _now()
        """When it was created (UTC)."""
        self._created_mono = time.monotonic()
        self._last_activity = self.created_at
        self._last_activity_mono = self._created_mono
        self._failure: str | None = None
        self._run: Container | None = None
        self._lock = asyncio.Lock()
        self._state_changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._busy = 0
        self._disk_used = 0
        self._over_quota = False
        self._last_cpu: tuple[float, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._deleted = asyncio.Event()
        self._disk_ops = 0
        self._disk_idle = asyncio.Event()
        self._disk_idle.set()

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> SandboxState:
        """Its state now."""
        return self._state

    @property
    def lifecycle(self) -> LifecyclePolicy:
        """Its lifecycle policy in force."""
        return self._lifecycle

    @property
    def info(self) -> SandboxInfo:
        """A copy of its public facts now."""
        return SandboxInfo(
            id=self.id,
            group=self.group,
            state=self._state,
            stopped_reason=self._stopped_reason,
            stopped_at=self._stopped_at,
            created_at=self.created_at,
            last_activity_at=self._last_activity,
            source=self.spec.source,
            resources=self.resources,
            labels=dict(self.spec.labels),
            environment=dict(self.spec.environment),
            lifecycle=self._lifecycle,
            egress_policy=self.network.policy.to_wire(),
            extra=dict(self.spec.extra),
            hostname=self.hostname,
            failure=self._failure,
        )

    @property
    def source(self) -> SandboxSource:
        """What its disk started from."""
        return self.spec.source

    @property
    def container(self) -> Container | None:
        """Its current run of processes, if any (for the egress runtime and tests)."""
        return self._run

    async def _set_state(self, state: SandboxState) -> None:
        self._state = state
        self._wake.set()
        async with self._state_changed:
            self._state_changed.notify_all()

    async def wait_for_state(self, *states: SandboxState, timeout: float | None = None) -> SandboxState:
        """Wait until the sandbox is in one of ``states`` (returns at once if it is)."""

        async def wait() -> SandboxState:
            async with self._state_changed:
                await self._state_changed.wait_for(lambda: self._state in states)
                return self._state

        return await asyncio.wait_for(wait(), timeout)

    def touch(self) -> None:
        """Note activity: the idle clock starts again."""
        self._last_activity = _now()
        self._last_activity_mono = time.monotonic()

    def _require_running(self) -> Container:
        self._require_not_deleted()
        if self._state is not SandboxState.RUNNING or self._run is None:
            raise SandboxNotRunning(self.id, self._state.value)
        return self._run

    def _require_not_deleted(self) -> None:
        # A request that found the sandbox and then waited (for the lock, or on its command)
        # while a delete ran answers as if it came after the delete: not found, never a 409
        # naming a state the caller cannot act on.
        if self._state is SandboxState.DELETING:
            raise SandboxNotFound(self.id)

    # -- start and stop ----------------------------------------------------------------------

    async def start(self, ready: Container | None = None) -> None:
        """Lay out the disk, start the processes and the timers; the state ends Running or Failed.

        ``ready`` is a run the runtime started ahead of need on this sandbox's disk (a ready
        sandbox): it is adopted instead of starting one.
        """
        try:
            if ready is not None:
                self._run = await self._adopt(ready)
            else:
                if not self.disk.exists():
                    await self._materialize(self.disk)
                self._run = await self._start_run()
        except SandboxError as exc:
            self._failure = exc.message
            await self._set_state(SandboxState.FAILED)
            raise
        self.touch()
        await self._set_state(SandboxState.RUNNING)
        self._tasks.append(asyncio.create_task(self._lifecycle_loop(), name=f"sandbox-{self.id}-lifecycle"))

    async def _start_run(self) -> Container:
        egress = await self.network.attach()
        try:
            run = await Container.start(
                self._host,
                name=self.home.name,
                disk=self.disk,
                uid=self.uid,
                resources=self.resources,
                hostname=self.hostname,
                egress=egress,
            )
        except BaseException:
            await asyncio.shield(self.network.detach())
            raise
        return await self._adopt(run)

    async def _adopt(self, run: Container) -> Container:
        self._disk_used = await asyncio.to_thread(disk_usage, self.disk)
        self._over_quota = self._disk_used > self.resources.disk_bytes
        self._last_cpu = None
        self._tasks.append(asyncio.create_task(self._quota_loop(run), name=f"sandbox-{self.id}-quota"))
        self._tasks.append(asyncio.create_task(self._watch_run(run), name=f"sandbox-{self.id}-watch"))
        return run

    async def _watch_run(self, run: Container) -> None:
        """Mark the sandbox Failed if its run ends on its own (its agent died)."""
        await run.process.wait()
        if self._run is run and self._state is SandboxState.RUNNING:
            self._failure = (
                f"the sandbox's processes ended unexpectedly (exit status {run.process.returncode})"
            )
            logger.warning("sandbox %s failed: %s", self.id, self._failure)
            self._run = None
            await run.kill()
            await self.network.detach()
            await self._set_state(SandboxState.FAILED)

    async def stop(self, reason: StoppedReason = StoppedReason.USER_STOPPED) -> SandboxInfo:
        """Stop as the lifecycle's suspend mode says; returns once Suspended or Stopped.

        Memory mode freezes every process (memory, open ports and the disk are kept); Disk mode
        kills them and keeps the disk; None mode also drops the disk (resume starts over from
        the sandbox's source). Stopping a stopped sandbox answers its state unchanged.
        """
        async with self._lock:
            self._require_not_deleted()
            if self._state in (SandboxState.SUSPENDED, SandboxState.STOPPED):
                return self.info
            run = self._require_running()
            await self._set_state(SandboxState.STOPPING)
            mode = self._lifecycle.auto_suspend.mode
            try:
                if mode is SuspendMode.MEMORY:
                    await run.freeze()
                    final = SandboxState.SUSPENDED
                else:
                    self._run = None
                    await run.kill()
                    # No process is left to use the door; resume opens a new one (same
                    # policy and decisions log) for the new run.
                    await self.network.detach()
                    if mode is SuspendMode.NONE:
                        await asyncio.to_thread(remove_tree, self.disk)
                    final = SandboxState.STOPPED
            except (OSError, SandboxError) as exc:
                self._failure = f"stopping failed: {exc}"
                await self._set_state(SandboxState.FAILED)
                raise ConflictingOperation(f"Sandbox '{self.id}' could not be stopped: {exc}") from exc
            self._stopped_reason = reason
            self._stopped_at = _now()
            self._stopped_mono = time.monotonic()
            await self._set_state(final)
            return self.info

    async def resume(self) -> SandboxInfo:
        """Thaw (Memory mode) or start afresh on the kept disk; returns once Running."""
        async with self._lock:
            self._require_not_deleted()
            if self._state is SandboxState.RUNNING:
                return self.info
            if self._state not in (SandboxState.SUSPENDED, SandboxState.STOPPED):
                raise ConflictingOperation(
                    f"Sandbox '{self.id}' is {self._state.value}; it cannot be resumed."
                )
            previous = self._state
            await self._set_state(SandboxState.RESUMING)
            try:
                if self._run is not None and self._run.frozen:
                    await self._run.thaw()
                else:
                    if not self.disk.exists():
                        await self._materialize(self.disk)
                    self._run = await self._start_run()
            except (OSError, SandboxError) as exc:
                await self._set_state(previous)
                raise SandboxStartFailed(f"Sandbox '{self.id}' could not be resumed: {exc}") from exc
            self._stopped_reason = None
            self._stopped_at = None
            self._stopped_mono = None
            self.touch()
            await self._set_state(SandboxState.RUNNING)
            return self.info

    async def destroy(self) -> None:
        """Kill every process, stop the timers and remove the disk (the runtime forgets it)."""
        async with self._lock:
            await self._set_state(SandboxState.DELETING)
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current:
                    task.cancel()
            for task in self._tasks:
                if task is not current:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            run, self._run = self._run, None
            if run is not None:
                await run.kill()
            await self.network.detach()
            # A file call that was under way may still create an entry; removing the tree while
            # it does would leave that entry (and so the sandbox's directory) behind. Uploads
            # stop at their next piece once the state is Deleting; a client that sends nothing
            # more is waited for only so long (its open file then lies in the removed tree).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._disk_idle.wait(), DISK_DRAIN_SECONDS)
            await asyncio.to_thread(remove_tree, self.home)
            self._deleted.set()

    async def wait_deleted(self) -> None:
        """Return once :meth:`destroy` finished (the processes are dead and the disk is gone)."""
        await self._deleted.wait()

    async def copy_disk_to(self, target: Path) -> None:
        """Copy the disk to ``target`` (a snapshot or image), frozen meanwhile when running.

        Freezing makes the copy one point in time; no state change runs during it.
        """
        async with self._lock:
            self._require_not_deleted()
            if self._state not in (SandboxState.RUNNING, SandboxState.SUSPENDED, SandboxState.STOPPED):
                raise ConflictingOperation(f"Sandbox '{self.id}' is {self._state.value}.")
            if not self.disk.exists():
                raise ConflictingOperation(f"Sandbox '{self.id}' kept no disk (suspend mode None).")
            run = self._run
            freeze = run is not None and not run.frozen
            if run is not None and freeze:
                await run.freeze()
            try:
                await copy_disk(self.disk, target)
            finally:
                if run is not None and freeze:
                    await run.thaw()
            self.touch()

    # -- commands ----------------------------------------------------------------------------

    async def exec_shell(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run ``command`` with bash (``bash -c``), as ``executeShellCommand`` does."""
        if not isinstance(command, str) or not command.strip():
            raise InvalidRequest("command must be a non-empty string.", target="command")
        return await self.exec_argv(
            [_SHELL, "-c", command], cwd=cwd, env=env, timeout=timeout, on_output=on_output
        )

    async def exec_argv(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run a program with arguments (``executeCommand``); ``on_output`` gets output as it comes.

        A background process the command leaves running keeps running; the call returns when
        the command itself exits (output still coming later is read for a short moment only).
        """
        if not argv or not all(isinstance(a, str) and "\x00" not in a for a in argv):
            raise InvalidRequest("argv must be a non-empty list of strings without NUL.", target="command")
        if timeout is not None and not timeout > 0:
            raise InvalidRequest("timeout must be a positive number of seconds.", target="timeout")
        for key, value in (env or {}).items():
            if not key or "=" in key or "\x00" in key or "\x00" in value:
                raise InvalidRequest(
                    f"Invalid environment variable name or value {key!r}.", target="environment"
                )
        if cwd is not None and ("\x00" in cwd or not cwd.startswith("/")):
            raise InvalidRequest("workingDirectory must be an absolute path.", target="workingDirectory")
        run = self._require_running()
        self.touch()
        self._busy += 1
        # The proxy variables first: the sandbox's and the command's own variables may
        # override them, which only loses the way out (the namespace has no other).
        attachment = self.network.attachment
        proxy = list(attachment.env.items()) if attachment is not None else []
        try:
            result = await run.client.exec(
                argv,
                cwd=cwd or _HOME,
                env=command_env([*proxy, *self.spec.environment.items(), *(env or {}).items()]),
                timeout=timeout,
                on_output=on_output,
                max_output_bytes=MAX_OUTPUT_BYTES,
            )
        except AgentGone as exc:
            # A delete killed it: the sandbox is gone, whatever the command did.
            self._require_not_deleted()
            # Never SandboxNotRunning here: that code tells a client nothing ran (resume and send
            # again), and this command started, so it may have run in part.
            if self._state is not SandboxState.RUNNING:
                raise ConflictingOperation(
                    f"Sandbox '{self.id}' was stopped ({self._state.value}) while the command ran; "
                    "it may have run in part, and its output is lost."
                ) from exc
            raise ConflictingOperation(f"The command's sandbox processes ended: {exc}") from exc
        finally:
            self._busy -= 1
            self.touch()
        if self._over_quota:
            result = dataclasses.replace(
                result,
                stderr=result.stderr + "\n[the sandbox's disk quota is used up: its commands were killed]\n",
            )
        return result

    # -- files -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _using_disk(self) -> AsyncIterator[None]:
        """Around a file call: it needs a running sandbox, counts as activity, and a delete
        waits for it (bounded) before removing the disk. A failure that the delete caused (the
        file vanished with the disk) reads as the delete's: the sandbox is not found."""
        self._require_running()
        self.touch()
        self._disk_ops += 1
        self._disk_idle.clear()
        try:
            yield
        except SandboxError:
            self._require_not_deleted()
            raise
        finally:
            self._disk_ops -= 1
            if self._disk_ops == 0:
                self._disk_idle.set()

    async def _until_deleted(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """An upload's pieces, ending the upload (not found) once a delete has begun."""
        async for chunk in chunks:
            self._require_not_deleted()
            yield chunk

    async def read_file(self, path: str) -> bytes:
        """A file's content."""
        async with self._using_disk():
            return await self.files.read(path)

    async def open_file(self, path: str) -> tuple[AsyncIterator[bytes], int]:
        """A file's content in pieces, and its size (for streaming downloads)."""
        async with self._using_disk():
            return await self.files.open_read(path)

    async def write_file(
        self,
        path: str,
        data: bytes | AsyncIterator[bytes],
        *,
        create_dirs: bool = True,
        mode: int | None = None,
    ) -> int:
        """Write a file whole; refused once the disk quota is used up. Returns the bytes written."""
        async with self._using_disk():
            room = self.resources.disk_bytes - self._disk_used
            if room <= 0:
                raise DiskQuotaExceeded(
                    f"Sandbox '{self.id}' uses {self._disk_used} of its {self.resources.disk_bytes} "
                    "bytes of disk."
                )
            chunks = self._until_deleted(_one(data) if isinstance(data, bytes) else data)
            written = await self.files.write(path, chunks, create_dirs=create_dirs, mode=mode, max_bytes=room)
            self._disk_used += written
            return written

    async def list_files(self, path: str) -> list[FileEntry]:
        """A directory's entries."""
        async with self._using_disk():
            return await self.files.list_dir(path)

    async def stat_file(self, path: str) -> FileEntry:
        """One entry's facts."""
        async with self._using_disk():
            return await self.files.stat(path)

    async def mkdir(self, path: str, *, parents: bool = True, mode: int | None = None) -> FileEntry:
        """Make a directory."""
        async with self._using_disk():
            return await self.files.mkdir(path, parents=parents, mode=mode)

    async def delete_file(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file or directory."""
        async with self._using_disk():
            await self.files.delete(path, recursive=recursive)
            self._disk_used = await asyncio.to_thread(disk_usage, self.disk)
        self._over_quota = self._disk_used > self.resources.disk_bytes

    # -- stats, lifecycle, egress ------------------------------------------------------------

    async def stats(self) -> SandboxStats:
        """CPU, memory, disk and processes now (zeros for processes while stopped)."""
        run = self._run
        disk = await asyncio.to_thread(disk_usage, self.disk) if self.disk.exists() else 0
        if run is None:
            return SandboxStats(0, 0, 0, self.resources.memory_bytes, disk, self.resources.disk_bytes, 0, 0.0,
                                StatsSource.PROC)  # fmt: skip
        cpu, memory, count = await asyncio.to_thread(run.usage)
        now = time.monotonic()
        since, cpu_before = self._last_cpu or (run.started, 0)
        self._last_cpu = (now, cpu)
        elapsed = max(now - since, 1e-6)
        rate = int(max(cpu - cpu_before, 0) / elapsed)
        source = StatsSource.CGROUP if run.cgroup is not None else StatsSource.PROC
        return SandboxStats(
            cpu_usage_ns=cpu,
            cpu_usage_nanocores=rate,
            memory_used_bytes=memory,
            memory_limit_bytes=self.resources.memory_bytes,
            disk_used_bytes=disk,
            disk_limit_bytes=self.resources.disk_bytes,
            processes=count,
            uptime_seconds=now - run.started,
            source=source,
        )

    def set_lifecycle(self, policy: LifecyclePolicy) -> SandboxInfo:
        """Replace the lifecycle policy; the timers follow at once (a later stop uses its mode)."""
        self._lifecycle = policy
        self._wake.set()
        return self.info

    def set_egress_policy(self, policy: EgressPolicy) -> EgressPolicy:
        """Replace the egress policy of the running sandbox; its next connection is decided by
        it, without a restart (:class:`SandboxNotRunning` when stopped or suspended, as the
        service answers 409)."""
        self._require_running()
        self.network.set_policy(policy)
        return policy

    @property
    def egress_policy(self) -> EgressPolicy:
        """The egress policy in force."""
        return self.network.policy

    @property
    def egress_decisions(self) -> DecisionLog:
        """The egress decisions log (kept across stop and resume)."""
        return self.network.decisions

    def _next_deadline(self) -> tuple[float, str] | None:
        due: list[tuple[float, str]] = []
        suspend = self._lifecycle.auto_suspend
        if suspend.enabled and self._state is SandboxState.RUNNING:
            due.append((self._last_activity_mono + suspend.interval_seconds, "suspend"))
        delete = self._lifecycle.auto_delete
        if delete.enabled:
            if delete.trigger is AutoDeleteTrigger.AFTER_CREATION:
                due.append((self._created_mono + delete.interval_seconds, "delete"))
            elif self._stopped_mono is not None:
                due.append((self._stopped_mono + delete.interval_seconds, "delete"))
        return min(due) if due else None

    async def _lifecycle_loop(self) -> None:
        # Ends on its own at delete too: on Python < 3.12 wait_for can swallow a cancel that
        # arrives as the event is set.
        while self._state not in (SandboxState.DELETING, SandboxState.FAILED):
            self._wake.clear()
            nxt = self._next_deadline()
            delay = None if nxt is None else nxt[0] - time.monotonic()
            if delay is None or delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            assert nxt is not None
            if nxt[1] == "delete":
                await self._on_auto_delete(self)
                return
            if self._busy:
                self.touch()  # a command still runs: that is activity
                continue
            try:
                await self.stop(StoppedReason.IDLE)
            except SandboxError as exc:
                logger.warning("auto-suspend of sandbox %s failed: %s", self.id, exc)
                self.touch()

    async def _quota_loop(self, run: Container) -> None:
        while self._run is run or self._state in (SandboxState.CREATING, SandboxState.RESUMING):
            await asyncio.sleep(QUOTA_POLL_SECONDS)
            if self._run is not run or run.frozen:
                continue
            self._disk_used = await asyncio.to_thread(disk_usage, self.disk)
            self._over_quota = self._disk_used > self.resources.disk_bytes
            if self._over_quota:
                killed = await run.kill_commands()
                logger.warning(
                    "sandbox %s went over its disk quota (%d > %d bytes): killed %d processes",
                    self.id, self._disk_used, self.resources.disk_bytes, killed,
                )  # fmt: skip


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
