"""The runtime where the server may make no cgroup: signals freeze, rlimits limit, /proc counts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from autogen_aca_sessions.local.runtime.sandboxes import (
    LocalSandbox,
    SandboxResources,
    SandboxRuntime,
    SandboxSpec,
    SandboxState,
    StatsSource,
)


@pytest_asyncio.fixture
async def bare(tmp_path: Path) -> AsyncIterator[SandboxRuntime]:
    rt = await SandboxRuntime.open(tmp_path / "sandboxes", use_cgroups=False)
    rt.create_group("g")
    try:
        yield rt
    finally:
        await rt.aclose()


async def _sandbox(rt: SandboxRuntime, spec: SandboxSpec | None = None) -> LocalSandbox:
    info = await rt.create("g", spec or SandboxSpec())
    return rt.sandbox("g", info.id)


async def test_memory_suspend_stops_every_process_and_resume_continues_them(bare: SandboxRuntime) -> None:
    assert set(bare.unenforced_limits) == {"freezer", "memory", "cpu", "pids"}
    sandbox = await _sandbox(bare)
    await sandbox.exec_shell("nohup python3 -c 'import time\nwhile True: time.sleep(0.01)' >/dev/null 2>&1 &")
    run = sandbox.container
    assert run is not None
    assert run.cgroup is None
    await sandbox.stop()
    states = await asyncio.to_thread(_states, run.pids()[1:])
    assert states
    assert set(states) == {"T"}, states  # every process inside is stopped
    await sandbox.resume()
    states = await asyncio.to_thread(_states, run.pids()[1:])
    assert "T" not in states
    assert (await sandbox.exec_shell("pgrep -fc 'while True'")).stdout.strip() == "1"


async def test_stats_come_from_proc_and_delete_kills_frozen_processes(bare: SandboxRuntime) -> None:
    sandbox = await _sandbox(bare)
    await sandbox.exec_shell("nohup sleep 3600 >/dev/null 2>&1 &")
    stats = await sandbox.stats()
    assert stats.source is StatsSource.PROC
    assert stats.memory_used_bytes > 0
    assert stats.processes >= 3
    run = sandbox.container
    assert run is not None
    identities = await asyncio.to_thread(_identities, run.pids())
    await sandbox.stop()
    await bare.delete("g", sandbox.id)
    # Dead (a zombie waits for its reaper).
    assert set(await asyncio.to_thread(_states_of_same, identities)) <= {"Z"}
    assert sandbox.state is SandboxState.DELETING


async def test_rlimits_stand_in_for_the_memory_cgroup(bare: SandboxRuntime) -> None:
    sandbox = await _sandbox(bare, SandboxSpec(resources=SandboxResources(memory_bytes=256 << 20)))
    result = await sandbox.exec_shell("python3 -c 'b = bytearray(1 << 30)'")
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr
    if os.geteuid() == 0:  # its own uid: RLIMIT_NPROC counts only its processes
        assert (await sandbox.exec_shell("ulimit -u")).stdout.strip() == "512"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of ``pid``, None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[19])


def _states(pids: list[int]) -> list[str]:
    return [stat[0] for pid in pids if (stat := _stat(pid)) is not None]


def _identities(pids: list[int]) -> dict[int, int]:
    """Each live pid's start time: with it, a pid the kernel gave to a new process since (the
    machine is busy and pids wrap at 32768) is not taken for the old one."""
    return {pid: stat[1] for pid in pids if (stat := _stat(pid)) is not None}


def _states_of_same(identities: dict[int, int]) -> list[str]:
    return [
        stat[0]
        for pid, started in identities.items()
        if (stat := _stat(pid)) is not None and stat[1] == started
    ]
