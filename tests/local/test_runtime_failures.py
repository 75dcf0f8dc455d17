"""Kernels that will not stop, or die: the call returns, the state loss is reported, the session goes on."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
import zmq

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import Session, SessionManager

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


MANAGER_CONFIG = PoolConfig(ready_sessions=1, sandbox="bwrap", max_execution_seconds=60)


async def run(session: Session, code: str, *, timeout: float = 30) -> Any:
    return await session.execute(code, timeout=timeout, max_output_chars=10_000)


async def test_code_that_ignores_the_interrupt_gets_its_kernel_restarted(manager: SessionManager) -> None:
    session = await manager.get_or_create("stubborn")
    await run(session, "before = 1")
    out = await run(
        session,
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('ignoring', flush=True)\ntime.sleep(60)",
        timeout=1,
    )
    assert out.outcome is Outcome.TIMED_OUT_RESTARTED
    assert out.state_lost
    assert out.stdout == "ignoring\n"
    assert out.message is not None
    assert "restarted" in out.message
    print(f"restart outcome after {out.duration_ms} ms for a 1 s timeout")
    after = await run(session, "'before' in globals(), 2 + 2")
    assert after.outcome is Outcome.SUCCEEDED
    assert after.result == [False, 4]
    assert not after.state_lost  # the loss was reported by the call that caused it


@pytest.mark.parametrize(
    "code",
    [
        "import os\nos._exit(3)",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "import ctypes\nctypes.string_at(0)",
    ],
    ids=["os._exit", "sigkill", "segfault"],
)
async def test_a_kernel_that_dies_during_a_call_is_reported_and_replaced(
    manager: SessionManager, code: str
) -> None:
    session = await manager.get_or_create(f"dies-{abs(hash(code))}")
    await run(session, "value = 'old'")
    out = await run(session, "print('last words', flush=True)\nimport time\ntime.sleep(0.2)\n" + code)
    assert out.outcome is Outcome.KERNEL_DIED
    assert out.state_lost
    assert out.message is not None
    assert "state" in out.message
    assert out.stdout == "last words\n"
    after = await run(session, "'value' in globals(), 1 + 1")
    assert after.outcome is Outcome.SUCCEEDED
    assert after.result == [False, 2]


async def test_a_kernel_killed_between_calls_is_replaced_and_the_loss_reported(
    manager: SessionManager,
) -> None:
    session = await manager.get_or_create("killed-from-outside")
    await run(session, "gone_soon = True")
    kernel = session.kernel
    assert kernel is not None
    os.killpg(kernel.pid, signal.SIGKILL)
    for _ in range(200):
        if not kernel.alive:
            break
        await asyncio.sleep(0.02)
    after = await run(session, "'gone_soon' in globals()")
    assert after.outcome is Outcome.SUCCEEDED
    assert after.result is False
    assert after.state_lost


async def test_a_crash_in_one_session_leaves_another_untouched(manager: SessionManager) -> None:
    calm = await manager.get_or_create("calm")
    wild = await manager.get_or_create("wild")
    await run(calm, "mine = [1, 2, 3]")
    crash = asyncio.ensure_future(run(wild, "import os\nos._exit(1)"))
    during = await run(calm, "sum(mine)")
    assert (await crash).outcome is Outcome.KERNEL_DIED
    assert during.result == 6
    after = await run(calm, "mine")
    assert after.result == [1, 2, 3]
    assert not after.state_lost


async def test_running_out_of_address_space_is_an_error_not_a_death(manager: SessionManager) -> None:
    session = await manager.get_or_create("greedy")
    out = await run(session, "block = bytearray(64 * 1024**3)")
    assert out.outcome is Outcome.FAILED
    assert out.error_name == "MemoryError"
    assert (await run(session, "1")).result == 1


async def test_deleting_a_session_during_a_call_ends_the_call(manager: SessionManager) -> None:
    session = await manager.get_or_create("deleted-mid-call")
    await run(session, "1")
    call = asyncio.ensure_future(run(session, "import time\ntime.sleep(30)", timeout=40))
    await asyncio.sleep(0.3)
    assert await manager.delete("deleted-mid-call")
    out = await asyncio.wait_for(call, timeout=10)
    assert out.outcome is Outcome.KERNEL_DIED
    assert manager.get("deleted-mid-call") is None
    later = await run(session, "1")
    assert later.outcome is Outcome.KERNEL_DIED
    assert later.message is not None
    assert "deleted" in later.message


BYPASSING_THE_OUTPUT_CAP = {
    "OutStream.write called on the class": (
        "import sys\ntype(sys.stdout).write(sys.stdout, 'x' * 150_000_000)\nsys.stdout.flush()\n'done'"
    ),
    "a stream message sent on iopub directly": (
        "k = get_ipython().kernel\n"
        "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'x' * 150_000_000},"
        " parent=k.get_parent('shell'))\n'done'"
    ),
    "a message sent on the shell channel directly": (
        "k = get_ipython().kernel\n"
        "ident = k._shell_parent_ident\n"
        "ident = ident.get() if hasattr(ident, 'get') else ident\n"
        "k.session.send(k.shell_stream, 'execute_reply', {'x': 'x' * 150_000_000},"
        " parent=k.get_parent('shell'), ident=ident)\n'done'"
    ),
}
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.mark.parametrize("how", list(BYPASSING_THE_OUTPUT_CAP))
async def test_an_oversized_kernel_message_is_refused_and_the_call_fails_clearly(
    manager: SessionManager, how: str
) -> None:
    from autogen_aca_sessions.local.runtime.kernel import MAX_KERNEL_MESSAGE_BYTES

    session = await manager.get_or_create(f"oversized-{len(how)}")
    await run(session, "before = 1")
    kernel = session.kernel
    assert kernel is not None
    assert kernel.client.iopub_channel.socket.getsockopt(zmq.MAXMSGSIZE) == MAX_KERNEL_MESSAGE_BYTES
    assert kernel.client.shell_channel.socket.getsockopt(zmq.MAXMSGSIZE) == MAX_KERNEL_MESSAGE_BYTES
    out = await run(session, BYPASSING_THE_OUTPUT_CAP[how])
    assert out.outcome is Outcome.KERNEL_DIED, out
    assert out.error_name == "MessageTooLarge"
    assert len(out.stdout) <= 10_000
    assert out.state_lost
    # A fresh kernel serves the session, with both channels working (images come on iopub only).
    after = await run(
        session,
        "from IPython.display import Image, display\nimport base64\n"
        f"display(Image(data=base64.b64decode('{PIXEL_PNG}')))\nprint('ok')\n"
        "'before' in globals(), 1 + 1",
    )
    assert after.outcome is Outcome.SUCCEEDED, after
    assert (after.stdout, after.result, len(after.images)) == ("ok\n", [False, 2], 1)
    assert not after.state_lost  # the loss was reported by the call that caused it


async def test_a_huge_last_value_is_still_a_result_not_an_oversized_message(manager: SessionManager) -> None:
    session = await manager.get_or_create("huge-value")
    out = await run(session, "'x' * 150_000_000")
    assert out.outcome is Outcome.SUCCEEDED, out
    assert out.result == ("'" + "x" * 10_000)[:10_000]  # the start of its text, as for any huge value
