"""Waiting until one of a kernel's zmq sockets may hold a message, without a poll per wait.

pyzmq's ``zmq.asyncio.Poller.poll`` builds, on every call, a future per socket with its done
callbacks, timers and event-flag arithmetic, and tears them down when it returns: a warm cell
waits several times, on four sockets (two channels, two monitors). Here each socket's
notification descriptor (``ZMQ_FD``) is watched by the event loop once, for the kernel's life,
and a wait is one future.

The loop watches a duplicate of each descriptor: the channel's own asyncio socket may watch the
original (a descriptor number holds one reader per loop), and the duplicate shares its readiness.
libzmq's descriptor is edge-like: it becomes readable when commands reach the socket's mailbox,
and reading ``ZMQ_EVENTS`` processes them and clears it. So the reader clears it every time it
fires (else a message nobody waits for would keep it readable and spin the loop), and a caller
waits only after :meth:`SocketWaiter.ready` found nothing to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from typing import Any, cast

import zmq

__all__ = ["SocketWaiter"]


class SocketWaiter:
    """Wakes a waiting call when one of a fixed set of zmq sockets may have a message."""

    def __init__(self, sockets: Sequence[zmq.Socket[Any]]) -> None:
        # Plain views: reading EVENTS through the asyncio socket goes through its own view anyway.
        self._views: tuple[zmq.Socket[bytes], ...] = tuple(zmq.Socket.shadow(s.underlying) for s in sockets)
        self._poller = zmq.Poller()
        for view in self._views:
            self._poller.register(view, zmq.POLLIN)
        self._fds: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def ready(self) -> list[bool]:
        """For each socket, in the order given, whether a message can be read now."""
        # One zmq_poll over all of them: reading EVENTS socket by socket costs an enum lookup
        # of the option each (pyzmq's getsockopt), twice the time for four sockets.
        events = self._poller.poll(0)
        if not events:
            return [False] * len(self._views)
        readable = {id(socket) for socket, _ in events}
        return [id(view) in readable for view in self._views]

    async def wait(self, timeout: float) -> None:
        """Return once a socket may have a message, or after ``timeout`` seconds.

        Call it only when :meth:`ready` just found nothing: a message that was already waiting
        then does not wake it.
        """
        loop = asyncio.get_running_loop()
        if self._closed:
            return
        if self._loop is None:
            self._watch(loop)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(max(0.0, timeout), _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        """Stop watching and close the duplicates; a pending wait returns. Idempotent."""
        self._closed = True
        loop, fds = self._loop, self._fds
        self._fds = []
        for fd in fds:
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._waiter is not None:
            _wake(self._waiter)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for view in self._views:
            fd = os.dup(cast(int, view.get(zmq.FD)))
            self._fds.append(fd)
            loop.add_reader(fd, self._on_readable, view)

    def _on_readable(self, view: zmq.Socket[bytes]) -> None:
        with contextlib.suppress(zmq.ZMQError):  # closed under us: the kernel is going
            view.get(zmq.EVENTS)  # processes the socket's commands, which clears the descriptor
        if self._waiter is not None:
            _wake(self._waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
