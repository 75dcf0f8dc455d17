"""What one session costs the server process, and how many sessions the server's limits hold.

A Python session's kernel is reached over ZeroMQ; the server pays for each one (measured with
the plain and the fork launcher, sandboxed, on Linux; ``benchmarks/bench_density.py`` prints
the live figures):

- **ZeroMQ sockets**: 7. Shell, iopub and control channels, and one disconnect monitor on
  shell and on iopub, each of which is two sockets (ours and libzmq's internal end). libzmq's
  default of 1,023 sockets per context capped a pool at ~146 sessions.
- **File descriptors**: 15. One mailbox (eventfd) per ZeroMQ socket, one unix-socket connection
  per channel, the handle of the kernel's process (a pidfd, or nothing for a plain child), and,
  from the session's first call, a duplicate of the mailbox of each of the four sockets a call
  waits on (``socket_wait``: the event loop watches them for the kernel's life).
- **Threads**: 1. asyncio's child watcher waits for each sandbox process in a thread of its own.
- **Timers**: none while idle (the reaper is one task for the pool; a call polls only while it
  runs).

The process itself holds its baseline (the HTTP server, the event loop, the template process's
channel, the listening socket) and every HTTP connection takes one descriptor. At start-up the
runtime raises the open-file soft limit to the hard limit, sizes the ZeroMQ context for the
pool's maximum, and logs when the machine cannot hold that many sessions. While it runs, a new
session is refused with the pool-full answer when the descriptors left would not carry it and
:data:`FD_RESERVE` more (so that held sessions keep working); anything that still runs out is
reported as :class:`~.outcome.ResourcesExhaustedError` (HTTP 503 with ``Retry-After``).
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import time
from dataclasses import dataclass

__all__ = [
    "AZURE_MAX_SESSIONS",
    "FDS_PER_SESSION",
    "FD_RESERVE",
    "THREADS_PER_SESSION",
    "ZMQ_SOCKETS_PER_SESSION",
    "Capacity",
    "FdBudget",
    "exhausted_resource",
    "open_fd_count",
    "raise_open_file_limit",
    "zmq_socket_budget",
]

logger = logging.getLogger(__name__)

ZMQ_SOCKETS_PER_SESSION = 7
"""ZeroMQ sockets the server holds per kernel (3 channels, 2 monitors of 2 sockets each)."""
FDS_PER_SESSION = 15
"""File descriptors the server holds per kernel (see the module docstring)."""
THREADS_PER_SESSION = 1
"""Server threads per kernel (asyncio's child watcher)."""
FD_RESERVE = 128
"""Descriptors kept free for the sessions already held: HTTP connections, uploads, downloads,
and the replacement of a kernel that died or timed out."""
_ZMQ_SOCKET_SLACK = 64
"""ZeroMQ sockets beyond the sessions' own: kernels being replaced or starting in a burst."""
_SESSION_MIB = {"plain": 90, "fork": 15}
"""Unique memory of an idle session with NumPy, pandas and matplotlib imported, by launcher
(``benchmarks/README.md``): what the start-up check counts a session as."""
_TASKS_PER_KERNEL = 14
"""Host tasks (processes and threads) of one idle sandboxed kernel: ipykernel's threads, bwrap."""


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's open-file soft limit to its hard limit; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY:
        return soft, hard
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            logger.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft, hard


def open_fd_count() -> int:
    """How many file descriptors this process holds now."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:
        return 0


AZURE_MAX_SESSIONS = 600
"""The most sessions an Azure pool allows: a pool reconfigured while it runs may grow to it."""


def zmq_socket_budget(max_sessions: int, ready_sessions: int) -> int:
    """ZeroMQ sockets a context needs for ``max_sessions`` sessions and the ready kernels.

    Never less than Azure's maximum: the size is fixed once the first socket exists, and a
    running pool's maximum can be raised (``SessionManager.reconfigure``); a larger socket
    table costs libzmq a few hundred KiB, nothing per unused slot otherwise.
    """
    sessions = max(max_sessions, AZURE_MAX_SESSIONS)
    return ZMQ_SOCKETS_PER_SESSION * (sessions + ready_sessions) + _ZMQ_SOCKET_SLACK


def zmq_socket_limit() -> int:
    """The most sockets this libzmq lets one context have."""
    import zmq  # the runtime's dependency; the HTTP layer imports this module without it

    context = zmq.Context()
    try:
        return int(context.get(zmq.SOCKET_LIMIT))
    finally:
        context.term()


def exhausted_resource(exc: BaseException) -> str | None:
    """The resource an error says ran out (``open files``, ``memory`` ...), or None for another error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        if number in (errno.EMFILE, errno.ENFILE):
            return "open files" if number == errno.EMFILE else "open files (system-wide)"
        if number == errno.ENOMEM:
            return "memory"
        if number == errno.EAGAIN and isinstance(current, OSError):  # not zmq.Again: no data yet
            return "processes or threads"
        if isinstance(current, RuntimeError) and "can't start new thread" in str(current):
            return "threads"
        if isinstance(current, MemoryError):
            return "memory"
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True)
class Capacity:
    """How many sessions each of the server's limits holds (computed at start-up)."""

    open_files: int
    """Sessions the open-file soft limit holds after the process's baseline and the reserve."""
    zmq_sockets: int
    """Sessions the ZeroMQ context's socket limit holds."""
    memory: int
    """Sessions the available memory holds, at the launcher's measured idle size."""
    tasks: int
    """Sessions the system's process/thread limits hold."""

    @property
    def sessions(self) -> int:
        """The smallest of them: what this machine holds."""
        return min(self.open_files, self.zmq_sockets, self.memory, self.tasks)

    @classmethod
    def measure(cls, *, zmq_sockets: int, ready_sessions: int, launcher: str) -> Capacity:
        """The capacity of this process and machine now."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        free_fds = soft - open_fd_count() - FD_RESERVE if soft != resource.RLIM_INFINITY else 1 << 20
        by_fds = max(0, free_fds // FDS_PER_SESSION - ready_sessions)
        by_zmq = max(0, (zmq_sockets - _ZMQ_SOCKET_SLACK) // ZMQ_SOCKETS_PER_SESSION - ready_sessions)
        available = _mem_available_mib()
        per_session = _SESSION_MIB.get(launcher, _SESSION_MIB["plain"])
        by_memory = (available // per_session - ready_sessions) if available is not None else 1 << 20
        by_tasks = _task_capacity() // _TASKS_PER_KERNEL - ready_sessions
        return cls(open_files=by_fds, zmq_sockets=by_zmq, memory=max(0, by_memory), tasks=max(0, by_tasks))

    def shortfalls(self, max_sessions: int, *, launcher: str) -> list[str]:
        """Sentences naming each limit that holds fewer than ``max_sessions`` sessions."""
        problems = []
        if self.open_files < max_sessions:
            problems.append(
                f"the open-file limit holds about {self.open_files} sessions ({FDS_PER_SESSION} descriptors "
                "each); raise it (ulimit -n, LimitNOFILE)"
            )
        if self.zmq_sockets < max_sessions:
            problems.append(
                f"the ZeroMQ context holds {self.zmq_sockets} sessions "
                f"({ZMQ_SOCKETS_PER_SESSION} sockets each)"
            )
        if self.memory < max_sessions:
            per = _SESSION_MIB.get(launcher, _SESSION_MIB["plain"])
            problems.append(
                f"the available memory holds about {self.memory} idle sessions with the data stack imported "
                f"(~{per} MiB each with the {launcher} launcher)"
            )
        if self.tasks < max_sessions:
            problems.append(
                f"the system's process and thread limits hold about {self.tasks} kernels "
                "(kernel.pid_max, kernel.threads-max)"
            )
        return problems


class FdBudget:
    """Decides whether one more session's descriptors fit, counting them at most every second.

    Counting ``/proc/self/fd`` takes a few milliseconds with thousands open, too long for every
    new session: between counts, each session admitted is assumed to cost :data:`FDS_PER_SESSION`.
    """

    _RECOUNT_SECONDS = 1.0

    def __init__(self) -> None:
        self._counted = 0
        self._counted_at = -1e9
        self._admitted_since = 0

    def admits(self) -> tuple[bool, int, int]:
        """(whether one more session fits, descriptors open, the soft limit)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return True, 0, soft
        now = time.monotonic()
        estimate = self._counted + self._admitted_since * FDS_PER_SESSION
        near = soft - estimate < FD_RESERVE + 8 * FDS_PER_SESSION
        if near or now - self._counted_at > self._RECOUNT_SECONDS:
            self._counted = open_fd_count()
            self._counted_at = now
            self._admitted_since = 0
            estimate = self._counted
        fits = soft - estimate >= FD_RESERVE + FDS_PER_SESSION
        if fits:
            self._admitted_since += 1
        return fits, estimate, soft


def _mem_available_mib() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        return None
    return None


def _task_capacity() -> int:
    """Tasks the system still allows: the smaller of pid_max and threads-max, minus those alive."""
    limits = []
    for path in ("/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"):
        try:
            with open(path, encoding="ascii") as handle:
                limits.append(int(handle.read().strip()))
        except (OSError, ValueError):
            continue
    if not limits:
        return 1 << 20
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            alive = int(handle.read().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        alive = 0
    return max(0, min(limits) - alive)
