"""Killing the pool's child processes without taking their exit status from asyncio.

asyncio's child watcher is the one owner of a child's exit status: it reaps the child
(``waitpid`` in a thread, or on a pidfd) and hands the status to the
:class:`asyncio.subprocess.Process`. Before Python 3.13, ``Process.kill()`` and
``send_signal()`` go through :meth:`subprocess.Popen.send_signal`, which first *polls* the
child with ``waitpid(pid, WNOHANG)``. When the child has just died (the process group was
SIGKILLed a moment before, or the kernel crashed), that poll reaps it: the watcher's own
``waitpid`` then fails, it logs "Unknown child process pid N, will report returncode 255"
on the console, and the process's ``returncode`` becomes 255 instead of the real status.

So signals go to the pid with :func:`os.kill` / :func:`os.killpg` and only while
``returncode`` is ``None``; reaping is left to the watcher alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Callable
from typing import Protocol


class _Signallable(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def kill(self) -> None: ...


def kill_process_group(process: _Signallable) -> None:
    """SIGKILL ``process`` and the process group it leads (it was started with ``start_new_session``).

    The group is signalled even after its leader exited (a timed-out shell command may leave
    background children in it); the leader itself only while its exit has not been seen. For
    handles other than asyncio's (a kernel forked from the template, signalled through its
    pidfd) the handle's own ``kill()`` is used, since it does not reap.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is not None:
        return
    if isinstance(process, asyncio.subprocess.Process):
        # Not process.kill(): see the module docstring.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)
    else:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


_PR_SET_PDEATHSIG = 1


def die_with_server() -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when the server thread that started
    it ends, however it ends (SIGKILL included).

    bubblewrap's ``--die-with-parent`` covers the sandboxed process only, not bwrap itself: a
    server killed without its clean-up left bwrap (a kernel's holder) running, re-parented to init.
    Between fork and exec only async-signal-safe work is allowed, so the libc handle is made here,
    before the fork; a child whose parent already went exits at once.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def in_child() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return in_child
