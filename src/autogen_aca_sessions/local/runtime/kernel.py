"""One Jupyter kernel in its sandbox: launching it, running code in it, interrupting and killing it.

Launching sits behind :class:`KernelLauncher` so that a launcher that forks kernels from
a pre-imported template process can replace :class:`PlainKernelLauncher` later; the
rest of the runtime only sees :class:`LaunchedKernel` and :class:`Kernel`.

The kernel process is ours (not a ``KernelManager``'s): the sandbox hides its real pid,
so interrupts go through the control channel (``interrupt_request``), and death is seen
from the process handle, which bwrap's exit mirrors. Messages are read with
jupyter_client's :class:`~jupyter_client.asynchronous.AsyncKernelClient` channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import zmq
import zmq.asyncio
from jupyter_client.adapter import adapt
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.session import Session as MessageSession
from zmq.utils.monitor import parse_monitor_message

from .bubblewrap import Sandbox
from .cell import (
    CellCollector,
    CellDeadline,
    DeadlineAction,
)
from .kernel_folder import chown_tree, kernel_environment, prepare_kernel_folder
from .outcome import CodeOutput, Outcome
from .signals import kill_process_group
from .socket_wait import SocketWaiter

__all__ = [
    "Kernel",
    "KernelLauncher",
    "KernelProcess",
    "KernelStartError",
    "LaunchedKernel",
    "PlainKernelLauncher",
    "chown_tree",
    "client_context",
    "kernel_environment",
    "stop_launched",
]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
"""Longest wait between checks that the kernel process is still alive."""
MAX_KERNEL_MESSAGE_BYTES = 128 * 2**20
"""Largest message the server accepts from a kernel (zmq ``MAXMSGSIZE`` of its client sockets).

The kernel sends output in pieces of 32 K characters and its reply holds at most the caller's
cap of each stream (10 M characters on the wire), so legitimate messages stay far below it;
session code that bypasses the kernel's cap (or sends messages itself) would otherwise make the
server decode messages of any size. zmq refuses a larger message before allocating it and drops
the connection; the kernel is then replaced (its sockets are never reused) and the call that saw
it fails with ``MessageTooLarge``, the session's state lost.
"""


class KernelStartError(RuntimeError):
    """A kernel did not come up (it exited, or did not answer in time)."""


class KernelProcess(Protocol):
    """The handle of a kernel's outermost process, as the runtime uses it.

    :class:`asyncio.subprocess.Process` is one; a launcher that forks kernels from a
    template process would hand back a pidfd-based handle with the same four members.
    The process must lead its own process group (the runtime kills the group).
    """

    @property
    def pid(self) -> int:
        """The host pid."""
        ...

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited (negative: the signal that killed it)."""
        ...

    async def wait(self) -> int:
        """Wait for the exit; returns the exit status."""
        ...

    def kill(self) -> None:
        """Send SIGKILL."""
        ...


@dataclass
class LaunchedKernel:
    """A kernel process that has been started (not necessarily ready yet)."""

    process: KernelProcess
    """The process whose exit means the kernel is gone (bwrap, or the kernel itself)."""
    connection_info: dict[str, Any]
    """How the server reaches the kernel (``transport``, ``ip``, ports, ``key`` ...)."""
    run_dir: Path
    """Host directory of the kernel's connection file and sockets; removed with the kernel."""
    cgroup: Path | None
    """The kernel's pids cgroup, removed with it."""
    started_at: float
    """``time.monotonic()`` when the process was started."""


class KernelLauncher(Protocol):
    """Starts kernel processes for sessions (plain exec today; fork-from-template later)."""

    async def launch(self, *, data_dir: Path, run_dir: Path, uid: int | None) -> LaunchedKernel:
        """Start a kernel that sees ``data_dir`` as its data directory and uses ``run_dir``.

        ``uid`` is the session's own host uid when the sandbox switches to one (the
        launcher makes ``run_dir`` that uid's); ``data_dir`` is already prepared.
        """
        ...


class PlainKernelLauncher:
    """Starts each kernel as a fresh interpreter inside the sandbox (about a second cold)."""

    def __init__(
        self, sandbox: Sandbox, *, egress: bool, hide_paths: Sequence[Path], mpl_cache: Path | None
    ) -> None:
        self.sandbox = sandbox
        self.egress = egress
        self.hide_paths = [Path(p).absolute() for p in hide_paths]
        self.mpl_cache = mpl_cache

    async def launch(self, *, data_dir: Path, run_dir: Path, uid: int | None) -> LaunchedKernel:
        folder = await prepare_kernel_folder(
            self.sandbox,
            data_dir=data_dir,
            run_dir=run_dir,
            uid=uid,
            cgroup_prefix="k",
            mpl_cache=self.mpl_cache,
        )
        spec = self.sandbox.boot_spec(
            "kernel",
            uid=uid,
            with_nproc=folder.with_nproc,
            connection_file=folder.connection_file,
            startup=str(Path(__file__).with_name("_kernel_startup.py")),
            die_with_parent=not self.sandbox.sandboxed,
        )
        command = self.sandbox.command(
            spec,
            data_dir=data_dir,
            run_dir=run_dir,
            hide=self.hide_paths,
            egress=self.egress,
            env=folder.env,
            cgroup_procs=folder.cgroup / "cgroup.procs" if folder.cgroup is not None else None,
        )
        process = await command.start()
        return LaunchedKernel(
            process=process,
            connection_info=folder.connection_info,
            run_dir=run_dir,
            cgroup=folder.cgroup,
            started_at=time.monotonic(),
        )

    async def close(self) -> None:
        """Nothing to stop: each kernel is its own process."""


def client_context(max_sockets: int | None = None) -> zmq.asyncio.Context:
    """A zmq context for kernel clients: no iopub drops on the reader's side, bounded messages.

    The kernel's PUB socket drops messages for a reader whose queue is full; an
    unbounded receive queue moves them into this process as fast as they come, where
    they are consumed at once (output beyond the caller's cap is never sent).
    ``max_sockets`` replaces libzmq's default of 1,023 sockets (7 per kernel: see ``capacity``).
    """
    context = zmq.asyncio.Context()
    if max_sockets is not None:
        # Only takes effect before the context's first socket.
        context.set(zmq.MAX_SOCKETS, max_sockets)
    context.setsockopt(zmq.RCVHWM, 0)
    # Options set on the context apply to each socket made from it, before it connects.
    context.setsockopt(zmq.MAXMSGSIZE, MAX_KERNEL_MESSAGE_BYTES)
    return context


class _UndatedSession(MessageSession):
    """jupyter_client's message session without the date parsing of every received message.

    ``Session.deserialize`` walks the header and parent header of every message looking for
    ISO dates to turn into ``datetime`` objects (``extract_dates`` then ``dateutil``): the
    costliest single function of the warm path, for dates the pool never reads. The signature
    check, the digest history and the message shape stay jupyter_client's.
    """

    def deserialize(
        self, msg_list: list[bytes] | list[zmq.Message], content: bool = True, copy: bool = True
    ) -> dict[str, Any]:
        if not copy:
            return super().deserialize(msg_list, content=content, copy=copy)
        parts: list[bytes] = msg_list  # type: ignore[assignment]
        if len(parts) < 5:
            raise TypeError("malformed message, must have at least 5 elements")
        if self.auth is not None:
            signature = parts[0]
            if not signature:
                raise ValueError("Unsigned Message")
            if signature in self.digest_history:
                raise ValueError(f"Duplicate Signature: {signature!r}")
            if content:
                self._add_digest(signature)
            if not hmac.compare_digest(signature, self.sign(parts[1:5])):
                raise ValueError(f"Invalid Signature: {signature!r}")
        header = self.unpack(parts[1])
        message: dict[str, Any] = {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": self.unpack(parts[2]),
            "metadata": self.unpack(parts[3]),
            "content": self.unpack(parts[4]) if content else parts[4],
            "buffers": [memoryview(b) for b in parts[5:]],
        }
        return adapt(message)


class Kernel:
    """A running kernel and the client that talks to it. Not safe for concurrent calls."""

    def __init__(self, launched: LaunchedKernel, *, context: zmq.asyncio.Context | None = None) -> None:
        self.launched = launched
        # One zmq context (one I/O thread) for all kernels of a pool, when the pool gives one.
        self._own_context = context is None
        self._context = context if context is not None else client_context()
        self.client = AsyncKernelClient(context=self._context)
        self.client.session = _UndatedSession(parent=self.client)
        self.client.load_connection_info(launched.connection_info)  # type: ignore[arg-type]
        self._iopub_monitor: zmq.asyncio.Socket | None = None
        self._shell_monitor: zmq.asyncio.Socket | None = None
        self._waiter: SocketWaiter | None = None
        try:
            self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
            # zmq reports a connection it dropped (an oversized message) only as a monitor event.
            self._iopub_monitor = self.client.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._shell_monitor = self.client.shell_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        except BaseException:
            # Out of sockets or descriptors half way: give back what was opened (the caller
            # stops the process).
            self._close_client()
            raise
        # Plain (blocking-API) views of the two reply sockets, for the non-blocking drain in
        # _take: an asyncio socket's non-blocking recv reads through the same kind of view,
        # after making a future (and several enum flag operations) per message. Shadows share
        # the underlying socket and never close it; the channels still own it.
        self._drain_views: dict[int, zmq.Socket[bytes]] = {
            id(socket): zmq.Socket.shadow(socket.underlying)
            for socket in (self.client.iopub_channel.socket, self.client.shell_channel.socket)
        }
        # One reader per socket for the kernel's life, not a poll's futures per wait (order:
        # iopub, shell, their monitors, as _execute reads SocketWaiter.ready).
        self._waiter = SocketWaiter(
            (
                self.client.iopub_channel.socket,
                self.client.shell_channel.socket,
                self._iopub_monitor,
                self._shell_monitor,
            )
        )
        self._closed = False
        self._executing = False
        self.ready_seconds: float | None = None
        """How long the kernel took from process start to answering (set by :meth:`wait_ready`)."""

    @property
    def pid(self) -> int:
        """The host pid of the kernel's outermost process (bwrap in a sandbox)."""
        return self.launched.process.pid

    @property
    def alive(self) -> bool:
        """Whether the kernel process still runs."""
        return not self._closed and self.launched.process.returncode is None

    @property
    def exit_status(self) -> int | None:
        """The process's exit status (negative: killed by that signal), ``None`` while it runs."""
        return self.launched.process.returncode

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the kernel answers on shell and its iopub messages reach us."""
        deadline = time.monotonic() + timeout
        shell = self.client.shell_channel
        iopub = self.client.iopub_channel
        while True:
            msg_id = self.client.kernel_info()
            got_reply = got_status = False
            resend_at = time.monotonic() + 0.5
            while time.monotonic() < resend_at:
                if not self.alive:
                    raise KernelStartError(f"the kernel exited during start-up (status {self.exit_status})")
                if time.monotonic() > deadline:
                    raise KernelStartError(f"the kernel did not answer within {timeout:.0f} s")
                with contextlib.suppress(Exception):
                    msg = await shell.get_msg(timeout=0.02)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        got_reply = True
                with contextlib.suppress(Exception):
                    msg = await iopub.get_msg(timeout=0.02)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        got_status = True
                if got_reply and got_status:
                    self.ready_seconds = time.monotonic() - self.launched.started_at
                    await self._drain_iopub()
                    return

    async def _drain_iopub(self) -> None:
        with contextlib.suppress(Exception):
            while await self.client.iopub_channel.msg_ready():
                await self.client.iopub_channel.get_msg(timeout=0)

    async def interrupt(self) -> None:
        """Ask the kernel to raise KeyboardInterrupt in the running cell (control channel)."""
        self._send_interrupt()

    def _send_interrupt(self) -> None:
        msg = self.client.session.msg("interrupt_request", {})
        self.client.control_channel.send(msg)

    async def execute(self, code: str, *, timeout: float, max_output_chars: int) -> CodeOutput:
        """Run ``code``; never raises for anything the code or the kernel does.

        On ``TIMED_OUT_RESTARTED`` and ``KERNEL_DIED`` this kernel is dead afterwards and
        the caller must replace it.
        """
        if not self.alive:
            return CodeOutput.kernel_died(self._death_message())
        self._executing = True
        try:
            return await self._execute(code, timeout=timeout, max_output_chars=max_output_chars)
        except asyncio.CancelledError:
            # Nobody waits for this cell any more: stop it rather than let it hold the kernel.
            if self.alive:
                with contextlib.suppress(Exception):
                    self._send_interrupt()
            raise
        finally:
            self._executing = False
            if self._closed:
                # kill() ran meanwhile and left the sockets to us: closing them under a
                # pending poll would cancel it.
                self._close_client()

    async def _execute(self, code: str, *, timeout: float, max_output_chars: int) -> CodeOutput:
        result_limit = max(1024, max_output_chars)
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {"r": f"__aca_result__({result_limit})"},
            "allow_stdin": False,
            # Calls are independent: an error must not abort a call queued behind it.
            "stop_on_error": False,
        }
        request = self.client.session.msg(
            "execute_request", content, metadata={"aca_max_output_chars": max(0, max_output_chars)}
        )
        cell = CellCollector(request["header"]["msg_id"], max_output_chars)
        deadline = CellDeadline(cell.started + max(0.0, timeout))
        self.client.shell_channel.send(request)

        iopub_monitor, shell_monitor = self._iopub_monitor, self._shell_monitor
        assert iopub_monitor is not None  # set up by __init__
        assert shell_monitor is not None
        waiter = self._waiter
        assert waiter is not None
        iopub_socket = self.client.iopub_channel.socket
        shell_socket = self.client.shell_channel.socket
        # Connections dropped before this call (a late oversized message) are not its business.
        await _drain_monitor(iopub_monitor)
        await _drain_monitor(shell_monitor)
        channel_lost = False

        while not cell.complete(time.monotonic()):
            if channel_lost:
                return await self._channel_lost(cell)
            if not self.alive:
                return await self._died(cell)
            now = time.monotonic()
            action = deadline.action(now)
            if action is DeadlineAction.INTERRUPT:
                await self.interrupt()
            elif action is DeadlineAction.KILL:
                await self.kill()
                message = (
                    f"Execution timed out after {timeout:g} s and did not stop when interrupted; "
                    "the kernel was restarted and the session's state (variables, imports) is lost."
                )
                return cell.finish(
                    Outcome.TIMED_OUT_RESTARTED,
                    state_lost=True,
                    message=message,
                    error_name="TimeoutError",
                    error_value=message,
                )
            iopub_ready, shell_ready, iopub_lost, shell_lost = waiter.ready()
            if not (iopub_ready or shell_ready or iopub_lost or shell_lost):
                await waiter.wait(max(0.0, min(_POLL_SECONDS, deadline.next_check() - now)))
                continue
            # A dropped connection is never connected again on the same socket: libzmq can
            # hold half a multipart message from the old connection, and reusing the socket
            # then aborts the whole server (fq.cpp "!_more"), as a kernel dying mid-message
            # showed. The kernel is replaced instead; only hostile code gets here.
            for monitor, lost in ((iopub_monitor, iopub_lost), (shell_monitor, shell_lost)):
                if lost and await _drain_monitor(monitor) and self.alive:
                    channel_lost = True
            if shell_ready:
                for msg in await self._take(shell_socket):
                    cell.on_shell(msg)
            if iopub_ready:
                for msg in await self._take(iopub_socket):
                    cell.on_iopub(msg)
        return cell.outcome(deadline, timeout)

    async def _died(self, cell: CellCollector) -> CodeOutput:
        """End a cell whose kernel died, with the output it sent before it went."""
        await self._drain_into(cell)
        message = self._death_message()
        return cell.finish(
            Outcome.KERNEL_DIED,
            state_lost=True,
            message=message,
            error_name="KernelDied",
            error_value=message,
        )

    async def _channel_lost(self, cell: CellCollector) -> CodeOutput:
        """End a cell whose kernel connection zmq dropped: a death, or a kernel to replace."""
        # A kernel that dies also drops its connections, a moment before its exit is seen:
        # give it that moment, so that a death is reported as a death.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.launched.process.wait()), 0.3)
        if not self.alive:
            return await self._died(cell)
        # Without a channel the kernel cannot be told or heard: replace it.
        await self.kill()
        message = (
            "The connection to the kernel was dropped while this code ran: the kernel "
            f"sent a message larger than the pool accepts ({MAX_KERNEL_MESSAGE_BYTES // 2**20} "
            "MiB; code that bypasses sys.stdout's output limit, or sends kernel messages "
            "itself, does this). It was restarted and the session's state (variables, "
            "imports) is lost."
        )
        return cell.finish(
            Outcome.KERNEL_DIED,
            state_lost=True,
            message=message,
            error_name="MessageTooLarge",
            error_value=message,
        )

    async def _take(self, socket: zmq.asyncio.Socket) -> list[dict[str, Any]]:
        """The messages waiting on ``socket`` (at most 256), read without blocking.

        Straight from the socket: the channel's ``get_msg(timeout=0)`` polls again and ends
        every drain with an exception.
        """
        session = self.client.session
        view = self._drain_views[id(socket)]
        messages: list[dict[str, Any]] = []
        for _ in range(256):
            try:
                frames = _recv_message(view)
            except zmq.ZMQError:  # zmq.Again: nothing more waiting
                break
            try:
                _, parts = session.feed_identities(frames)
                messages.append(session.deserialize(parts))
            except Exception:  # a message that does not parse or is not signed by the kernel
                continue
        return messages

    async def _drain_into(self, cell: CellCollector) -> None:
        """Keep output the dead kernel sent before it went."""
        with contextlib.suppress(Exception):
            while await self.client.iopub_channel.msg_ready():
                cell.on_iopub(await self.client.iopub_channel.get_msg(timeout=0))

    def _death_message(self) -> str:
        if self._closed:
            return (
                "The kernel was stopped by the pool (the session was deleted or expired, or the "
                "pool closed) while this call ran; the session's state is gone."
            )
        status = self.exit_status
        if status is not None and 128 < status < 128 + 65:
            status = -(status - 128)  # bwrap's init reports a signal death as 128 + signal
        if status is not None and status < 0:
            try:
                how = f"was killed by signal {signal.Signals(-status).name}"
            except ValueError:
                how = f"was killed by signal {-status}"
        elif status is not None:
            how = f"exited with status {status}"
        else:
            how = "stopped responding"
        hint = " (out of memory?)" if status == -signal.SIGKILL else ""
        return (
            f"The kernel {how}{hint} while running this code; the session's state "
            "(variables, imports) is lost and a new kernel serves the next call."
        )

    def _close_client(self) -> None:
        # Before the sockets close: the waiter reads their state when their descriptors fire.
        if self._waiter is not None:
            self._waiter.close()
        for channel_name, monitor in (("iopub", self._iopub_monitor), ("shell", self._shell_monitor)):
            if monitor is None:
                continue
            with contextlib.suppress(Exception):
                getattr(self.client, f"{channel_name}_channel").socket.disable_monitor()
            with contextlib.suppress(Exception):
                monitor.close(linger=0)
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        if self._own_context:
            with contextlib.suppress(Exception):
                self._context.destroy(linger=0)

    async def kill(self) -> None:
        """Kill the kernel and everything it started; close the client; remove its files."""
        if not self._closed:
            self._closed = True
            if not self._executing:
                self._close_client()
        await stop_launched(self.launched)


async def stop_launched(launched: LaunchedKernel) -> None:
    """Kill a launched kernel's process group, wait for it, remove its cgroup and run dir."""
    process = launched.process
    kill_process_group(process)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), timeout=10)
    if launched.cgroup is not None:
        from .bubblewrap import PidsCgroup

        await asyncio.to_thread(PidsCgroup.remove, launched.cgroup)
    await asyncio.to_thread(shutil.rmtree, launched.run_dir, True)


_NOBLOCK = int(zmq.NOBLOCK)


def _recv_message(view: zmq.Socket[bytes]) -> list[bytes]:
    """One multipart message, without blocking (``zmq.Again`` when none is waiting).

    Frame by frame, asking each frame whether more follow: ``recv_multipart`` asks the socket
    (``RCVMORE``) instead, and pyzmq looks that option up in an enum on every frame (a kernel
    message has six or more).
    """
    frame = view.recv(_NOBLOCK, copy=False)
    parts = [frame.bytes]
    while frame.more:
        frame = view.recv(_NOBLOCK, copy=False)
        parts.append(frame.bytes)
    return parts


async def _drain_monitor(monitor: zmq.asyncio.Socket) -> bool:
    """Consume the monitor's pending events; True when one said a connection was dropped."""
    dropped = False
    while True:
        try:
            frames = await monitor.recv_multipart(flags=zmq.NOBLOCK)
        except zmq.Again:
            return dropped
        except zmq.ZMQError:
            return dropped
        with contextlib.suppress(Exception):
            if parse_monitor_message(frames)["event"] == zmq.EVENT_DISCONNECTED:
                dropped = True
