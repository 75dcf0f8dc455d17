"""Limits on the real runtime: group counts, fork bombs, memory hogs and full disks stay contained."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from autogen_aca_sessions.local.runtime.sandboxes import (
    DiskQuotaExceeded,
    GroupLimits,
    LimitReached,
    SandboxNotRunning,
    SandboxResources,
    SandboxRuntime,
    SandboxSpec,
    SandboxState,
)
from tests.sandboxes._helpers import MakeSandbox


def _small(**kw: int) -> SandboxSpec:
    values = {"cpu_millicores": 1000, "memory_bytes": 256 << 20, "disk_bytes": 64 << 20, "max_processes": 64}
    values.update(kw)
    return SandboxSpec(resources=SandboxResources(**values))


async def test_max_sandbox_count_refuses_with_retry_after_and_frees_on_delete(
    runtime: SandboxRuntime,
) -> None:
    runtime.create_group("small", GroupLimits(max_sandboxes=2))
    first = await runtime.create("small", SandboxSpec())
    await runtime.create("small", SandboxSpec())
    await runtime.sandbox("small", first.id).stop()  # suspended sandboxes still count
    with pytest.raises(LimitReached) as refused:
        await runtime.create("small", SandboxSpec())
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 0
    assert len(runtime.list_sandboxes("small")) == 2
    await runtime.delete("small", first.id)
    await runtime.create("small", SandboxSpec())


async def test_a_fork_bomb_stops_at_the_process_limit_and_harms_no_one_else(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    bystander = await make_sandbox()
    bomb = await make_sandbox(_small(max_processes=32))
    await bomb.exec_shell("b() { b | b & }; b; sleep 1", timeout=3)
    # The bomb's processes live on (the command's timeout only kills its own group), but no
    # more of them than the limit allows.
    assert (await bomb.stats()).processes <= 32
    assert (await bystander.exec_shell("echo fine")).stdout == "fine\n"
    # The server can still start new sandboxes; delete takes the bomb's processes with it.
    fresh = await make_sandbox()
    assert (await fresh.exec_shell("echo new")).stdout == "new\n"
    await runtime.delete(bomb.group, bomb.id)


async def test_a_memory_hog_is_stopped_at_its_limit(make_sandbox: MakeSandbox) -> None:
    bystander = await make_sandbox()
    hog = await make_sandbox(_small(memory_bytes=128 << 20))
    result = await hog.exec_shell("python3 -c 'b = bytearray(1 << 30); print(len(b))'")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert (await bystander.exec_shell("echo fine")).stdout == "fine\n"
    assert (await hog.exec_shell("echo alive")).stdout == "alive\n"


async def test_one_file_cannot_exceed_the_disk_quota(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(_small(disk_bytes=8 << 20))
    result = await sandbox.exec_shell("head -c 20M /dev/zero > /root/big")
    assert result.exit_code != 0
    size = (await sandbox.stat_file("/root/big")).size
    assert size <= 8 << 20


async def test_filling_the_disk_kills_the_writer_and_refuses_uploads_until_space_is_freed(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(_small(disk_bytes=16 << 20))
    result = await sandbox.exec_shell(
        "for i in 1 2 3 4; do head -c 6M /dev/urandom > /root/f$i; done; sleep 120; echo never", timeout=100
    )
    assert not result.timed_out
    assert "never" not in result.stdout
    assert "disk quota" in result.stderr
    with pytest.raises(DiskQuotaExceeded):
        await sandbox.write_file("/root/more", b"x" * 1024)
    for i in (1, 2, 3, 4):
        await sandbox.delete_file(f"/root/f{i}")
    assert await sandbox.write_file("/root/more", b"x" * 1024) == 1024
    assert (await sandbox.exec_shell("echo ok")).stdout == "ok\n"


async def test_an_upload_larger_than_the_room_left_is_refused_whole(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(_small(disk_bytes=4 << 20))
    with pytest.raises(DiskQuotaExceeded):
        await sandbox.write_file("/root/big", b"x" * (5 << 20))
    assert [e.name for e in await sandbox.list_files("/root") if e.name == "big"] == []


async def test_a_sandbox_whose_agent_dies_is_failed_and_can_be_deleted(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    sandbox = await make_sandbox()
    run = sandbox.container
    assert run is not None
    for pid in run.own_pids:
        if pid != run.process.pid:
            # Killing one may already have ended another (the egress forwarder dies with the agent).
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    await sandbox.wait_for_state(SandboxState.FAILED, timeout=60)
    assert sandbox.info.failure is not None
    with pytest.raises(SandboxNotRunning):
        await sandbox.exec_shell("true")
    await runtime.delete(sandbox.group, sandbox.id)


async def test_an_agent_that_never_answers_cannot_hold_a_command_past_its_timeout(
    make_sandbox: MakeSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autogen_aca_sessions.local.runtime.sandboxes import agent_client

    monkeypatch.setattr(agent_client, "_GRACE_SECONDS", 0.3)
    sandbox = await make_sandbox()
    run = sandbox.container
    assert run is not None
    # Stopped from outside, the agent stands for code in the sandbox that took its socket.
    agents = [p for p in run.own_pids if p not in (run.process.pid, run.init_pid)]
    for pid in agents:
        os.kill(pid, signal.SIGSTOP)
    try:
        result = await sandbox.exec_shell("true", timeout=0.2)
    finally:
        for pid in agents:
            os.kill(pid, signal.SIGCONT)
    assert result.timed_out
    assert result.exit_code == 137
    assert (await sandbox.exec_shell("echo back")).stdout == "back\n"
