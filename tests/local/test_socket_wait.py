"""``SocketWaiter``: one reader per zmq socket for a kernel's life instead of a poll per wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import zmq
import zmq.asyncio

from autogen_aca_sessions.local.runtime.socket_wait import SocketWaiter


class Pairs:
    """Two connected PAIR sockets per channel: the kernel's end sends, ours is watched."""

    def __init__(self, context: zmq.asyncio.Context, count: int) -> None:
        self.senders: list[zmq.asyncio.Socket] = []
        self.receivers: list[zmq.asyncio.Socket] = []
        for i in range(count):
            sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
            sender.bind(f"inproc://socket-wait-{id(self)}-{i}")
            receiver.connect(f"inproc://socket-wait-{id(self)}-{i}")
            self.senders.append(sender)
            self.receivers.append(receiver)

    def close(self) -> None:
        for socket in self.senders + self.receivers:
            socket.close(linger=0)


@pytest.fixture
async def pairs() -> AsyncIterator[Pairs]:
    context = zmq.asyncio.Context()
    made = Pairs(context, 2)
    try:
        yield made
    finally:
        made.close()
        context.term()


async def test_a_wait_ends_when_a_message_reaches_one_of_the_sockets(pairs: Pairs) -> None:
    waiter = SocketWaiter(pairs.receivers)
    try:
        assert waiter.ready() == [False, False]
        waiting = asyncio.ensure_future(waiter.wait(3600))
        await asyncio.sleep(0)  # the readers are registered and the wait is pending
        assert not waiting.done()
        await pairs.senders[1].send(b"reply")
        await waiting
        assert waiter.ready() == [False, True]
        assert await pairs.receivers[1].recv() == b"reply"
        assert waiter.ready() == [False, False]
    finally:
        waiter.close()


async def test_an_unread_message_does_not_keep_waking_the_loop(pairs: Pairs) -> None:
    waiter = SocketWaiter(pairs.receivers)
    wakes = 0
    on_readable = waiter._on_readable

    def counting(view: zmq.Socket[bytes]) -> None:
        nonlocal wakes
        wakes += 1
        on_readable(view)

    waiter._on_readable = counting  # type: ignore[method-assign]
    try:
        assert waiter.ready() == [False, False]
        waiting = asyncio.ensure_future(waiter.wait(3600))
        await asyncio.sleep(0)
        await pairs.senders[0].send(b"output")
        await waiting
        # Nobody reads the message: the descriptor was cleared when it fired, so the loop does
        # not call the reader again on every turn (a spinning reader would count ~200 here).
        for _ in range(200):
            await asyncio.sleep(0)
        assert 1 <= wakes <= 3
        assert waiter.ready() == [True, False]
    finally:
        waiter.close()


async def test_close_ends_a_pending_wait_and_unregisters_the_readers(pairs: Pairs) -> None:
    waiter = SocketWaiter(pairs.receivers)
    waiting = asyncio.ensure_future(waiter.wait(3600))
    await asyncio.sleep(0)
    fds = list(waiter._fds)
    assert len(fds) == 2
    waiter.close()
    await waiting
    loop = asyncio.get_running_loop()
    for fd in fds:
        assert not loop.remove_reader(fd)  # nothing left registered under that number
    await waiter.wait(3600)  # closed: returns at once
