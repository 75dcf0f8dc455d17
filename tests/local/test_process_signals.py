"""Killing a child never takes its exit status away from asyncio's child watcher.

Before Python 3.13, ``asyncio.subprocess.Process.kill()`` polls the child with
``waitpid(WNOHANG)`` first; if the child has just died, that poll reaps it and the watcher
logs "Unknown child process pid N, will report returncode 255". ``kill_process_group`` is
what the pool uses instead.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess

import pytest

from autogen_aca_sessions.local.runtime.signals import kill_process_group

WATCHER_COMPLAINTS = ("Unknown child process", "exit status already read")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


async def test_killing_a_group_whose_leader_just_died_keeps_its_real_exit_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    for _ in range(20):
        process = await asyncio.create_subprocess_exec("sleep", "100", start_new_session=True)
        await asyncio.sleep(0.005)
        kill_process_group(process)
        # Let the leader die, and keep the loop from handling the exit: the second call then
        # meets an exited-but-unreaped child, the case Process.kill() reaps by polling.
        for _ in range(10_000):
            if _state(process.pid) not in ("S", "R"):
                break
        kill_process_group(process)

        assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL
    complaints = [
        r.getMessage() for r in caplog.records if any(c in r.getMessage() for c in WATCHER_COMPLAINTS)
    ]
    assert complaints == []


async def test_the_kill_never_polls_the_child_through_popen(monkeypatch: pytest.MonkeyPatch) -> None:
    polled: list[int] = []
    original = subprocess.Popen.poll

    def recording_poll(self: subprocess.Popen[bytes]) -> int | None:
        polled.append(self.pid)
        return original(self)

    monkeypatch.setattr(subprocess.Popen, "poll", recording_poll)
    process = await asyncio.create_subprocess_exec("sleep", "100", start_new_session=True)

    kill_process_group(process)

    assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL
    assert process.pid not in polled


async def test_a_group_is_killed_after_its_leader_exited() -> None:
    # A shell command that timed out may leave a background child in its group.
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", "sleep 100 >/dev/null & echo $!", stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    straggler = int((await process.stdout.readline()).decode())
    await asyncio.wait_for(process.wait(), 10)
    assert _state(straggler) in ("S", "R")

    kill_process_group(process)

    for _ in range(200):
        if _state(straggler) in ("gone", "Z"):
            break
        await asyncio.sleep(0.01)
    assert _state(straggler) in ("gone", "Z")
