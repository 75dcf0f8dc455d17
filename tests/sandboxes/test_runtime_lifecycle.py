"""A sandbox's life on the real runtime: create, commands, files, stop/resume in each mode, delete."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from autogen_aca_sessions.local.runtime.sandboxes import (
    AutoDeletePolicy,
    AutoSuspendPolicy,
    ConflictingOperation,
    FileNotFound,
    LifecyclePolicy,
    OutputChunk,
    OutputStream,
    SandboxNotFound,
    SandboxNotRunning,
    SandboxResources,
    SandboxRuntime,
    SandboxSpec,
    SandboxState,
    StoppedReason,
    SuspendMode,
)
from tests.sandboxes._helpers import GROUP, MakeSandbox


def _mode(mode: SuspendMode, interval: float = 300) -> SandboxSpec:
    return SandboxSpec(lifecycle=LifecyclePolicy(AutoSuspendPolicy(True, interval, mode)))


# A background server whose answer holds state only its memory has: a token drawn at start
# and a count of requests served.
_SERVER = r"""
import http.server, os, socketserver
token = os.urandom(8).hex()
count = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        count += 1
        body = f"{token} {count}".encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.TCPServer(("127.0.0.1", 8123), H).serve_forever()
"""
# Asks the server, retrying while it starts (inside the sandbox; the server sees no port).
_ASK = (
    "for i in $(seq 200); do python3 -c 'import urllib.request as u; "
    'print(u.urlopen("http://127.0.0.1:8123", timeout=5).read().decode())\' 2>/dev/null && exit 0; '
    "sleep 0.05; done; exit 1"
)
_LOOP = """\
import os, time
x = os.urandom(6).hex()
n = 0
while True:
    n += 1
    with open('/root/n.tmp', 'w') as f:
        f.write(f'{x} {n}')
    os.replace('/root/n.tmp', '/root/n')
    time.sleep(0.01)
"""


async def test_create_answers_running_and_runs_a_command(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    assert sandbox.state is SandboxState.RUNNING
    result = await sandbox.exec_shell("python3 -c 'print(6*7)'; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "42\n", "err\n")
    assert not result.timed_out


async def test_exec_argv_working_directory_and_environment(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(SandboxSpec(environment={"FROM_SPEC": "a"}))
    await sandbox.mkdir("/mnt/data/work")
    result = await sandbox.exec_argv(
        ["/bin/sh", "-c", 'pwd; echo "$FROM_SPEC $FROM_CALL"'], cwd="/mnt/data/work", env={"FROM_CALL": "b"}
    )
    assert result.stdout == "/mnt/data/work\na b\n"
    missing = await sandbox.exec_argv(["no-such-program-here"])
    assert missing.exit_code == 127


async def test_background_process_outlives_its_command_and_exec_does_not_wait_for_it(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    # The second background child keeps stdout open: the command must still return.
    started = await sandbox.exec_shell("nohup sleep 3600 >/dev/null 2>&1 & sleep 3601 & echo started")
    assert started.exit_code == 0
    assert started.stdout == "started\n"
    found = await sandbox.exec_shell("pgrep -f 'sleep 3600' && pgrep -f 'sleep 3601'")
    assert found.exit_code == 0, found


async def test_output_streams_while_the_command_runs(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    first_chunk = asyncio.Event()
    chunks: list[OutputChunk] = []

    async def on_output(chunk: OutputChunk) -> None:
        chunks.append(chunk)
        first_chunk.set()

    # The command waits for a file that is only written once the first chunk arrived here.
    command = "echo first; while [ ! -e /root/go ]; do sleep 0.01; done; echo second"
    task = asyncio.create_task(sandbox.exec_shell(command, on_output=on_output, timeout=60))
    await asyncio.wait_for(first_chunk.wait(), 60)
    assert not task.done()
    await sandbox.write_file("/root/go", b"")
    result = await task
    assert result.stdout == "first\nsecond\n"
    assert [c.stream for c in chunks] == [OutputStream.STDOUT, OutputStream.STDOUT]


async def test_timeout_kills_the_command_and_says_so(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    result = await sandbox.exec_shell("echo before; sleep 60", timeout=0.5)
    assert result.timed_out
    assert result.exit_code == 137
    assert result.stdout == "before\n"
    assert "timeout" in result.stderr
    assert (await sandbox.exec_shell("pgrep -f 'sleep 60'")).exit_code == 1


async def test_files_round_trip(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    assert await sandbox.write_file("/root/a.txt", b"hello") == 5
    assert await sandbox.read_file("/root/a.txt") == b"hello"
    await sandbox.write_file("/home/u/deep/b.sh", b"#!/bin/sh\necho hi\n", create_dirs=True, mode=0o755)
    entry = await sandbox.stat_file("/home/u/deep/b.sh")
    assert (entry.size, entry.mode, entry.is_dir, entry.path) == (18, 0o755, False, "/home/u/deep/b.sh")
    assert (await sandbox.exec_shell("/home/u/deep/b.sh")).stdout == "hi\n"
    assert [e.name for e in await sandbox.list_files("/home/u")] == ["deep"]
    with pytest.raises(FileNotFound):
        await sandbox.write_file("/root/missing/c.txt", b"x", create_dirs=False)
    assert (await sandbox.exec_shell("echo inside > /mnt/data/i.txt")).exit_code == 0
    assert await sandbox.read_file("/mnt/data/i.txt") == b"inside\n"
    await sandbox.delete_file("/home/u", recursive=True)
    assert await sandbox.list_files("/home") == []
    with pytest.raises(FileNotFound):
        await sandbox.read_file("/home/u/deep/b.sh")


async def test_memory_mode_keeps_processes_memory_and_open_ports(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(_mode(SuspendMode.MEMORY))
    await sandbox.write_file("/root/server.py", _SERVER.encode())
    await sandbox.exec_shell("nohup python3 /root/server.py >/dev/null 2>&1 &")
    before = await sandbox.exec_shell(_ASK)
    assert before.exit_code == 0, before
    token, count = before.stdout.split()
    assert count == "1"

    stopped = await sandbox.stop()
    assert stopped.state is SandboxState.SUSPENDED
    assert stopped.stopped_reason is StoppedReason.USER_STOPPED
    with pytest.raises(SandboxNotRunning):
        await sandbox.exec_shell("true")
    resumed = await sandbox.resume()
    assert resumed.state is SandboxState.RUNNING

    after = await sandbox.exec_shell(_ASK)
    assert after.stdout.split() == [token, "2"]  # the same process, its memory intact


async def test_memory_mode_keeps_a_running_python_loop(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(_mode(SuspendMode.MEMORY))
    await sandbox.write_file("/root/loop.py", _LOOP.encode())
    await sandbox.exec_shell("nohup python3 /root/loop.py >/dev/null 2>&1 &")
    await sandbox.exec_shell("while [ ! -s /root/n ]; do sleep 0.01; done", timeout=60)
    await sandbox.stop()
    token, count = (await asyncio.to_thread((sandbox.disk / "root" / "n").read_text)).split()
    await sandbox.resume()
    # After the thaw the loop goes on from its own count, with the token it drew at start.
    result = await sandbox.exec_shell(
        f'while true; do set -- $(cat /root/n); [ "$1" = {token} ] && [ "$2" -gt {count} ] && break; '
        "sleep 0.01; done; echo ok",
        timeout=60,
    )
    assert result.stdout == "ok\n", result


async def test_disk_mode_loses_processes_but_keeps_files(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(_mode(SuspendMode.DISK))
    await sandbox.write_file("/root/a.txt", b"kept")
    await sandbox.exec_shell("echo gone > /tmp/t; nohup sleep 3600 >/dev/null 2>&1 &")
    assert (await sandbox.stop()).state is SandboxState.STOPPED
    assert sandbox.container is None
    await sandbox.resume()
    assert await sandbox.read_file("/root/a.txt") == b"kept"
    assert (await sandbox.exec_shell("pgrep -f 'sleep 3600'")).exit_code == 1
    assert (await sandbox.exec_shell("cat /tmp/t")).exit_code != 0


async def test_a_disk_mode_stop_during_a_command_says_it_may_have_run_not_that_nothing_ran(
    make_sandbox: MakeSandbox,
) -> None:
    """``SandboxNotRunning`` tells a client that nothing ran (resume and send again); a command the
    stop cut short did run in part, so it is ``ConflictingOperation`` and a client never resends it."""
    sandbox = await make_sandbox(_mode(SuspendMode.DISK))
    started = asyncio.Event()

    async def on_output(chunk: OutputChunk) -> None:
        started.set()

    task = asyncio.create_task(sandbox.exec_shell("echo started; sleep 3600", on_output=on_output))
    await asyncio.wait_for(started.wait(), 60)
    assert (await sandbox.stop()).state is SandboxState.STOPPED
    with pytest.raises(ConflictingOperation, match="while the command ran"):
        await task


async def test_none_mode_keeps_nothing(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(_mode(SuspendMode.NONE))
    await sandbox.write_file("/root/a.txt", b"dropped")
    await sandbox.stop()
    await sandbox.resume()
    with pytest.raises(FileNotFound):
        await sandbox.read_file("/root/a.txt")


async def test_stop_and_resume_are_idempotent(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    first = await sandbox.stop()
    again = await sandbox.stop()
    assert first.state is again.state is SandboxState.SUSPENDED
    await sandbox.resume()
    assert (await sandbox.resume()).state is SandboxState.RUNNING


def _alive(pids: list[int]) -> list[int]:
    """The pids still running (a zombie has died; it only waits for its reaper)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != b"Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize("mode", [SuspendMode.MEMORY, SuspendMode.DISK])
async def test_delete_kills_every_process_and_removes_the_disk(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox, mode: SuspendMode
) -> None:
    sandbox = await make_sandbox(_mode(mode))
    await sandbox.exec_shell("nohup sleep 3600 >/dev/null 2>&1 & (setsid sleep 3602 &) ; sleep 3603 &")
    run = sandbox.container
    assert run is not None
    pids = await asyncio.to_thread(run.pids)
    assert len(pids) >= 5
    if mode is SuspendMode.MEMORY:
        await sandbox.stop()  # frozen processes must die too
    await runtime.delete(GROUP, sandbox.id)
    assert _alive(pids) == []
    assert not sandbox.home.exists()
    with pytest.raises(SandboxNotFound):
        runtime.get(GROUP, sandbox.id)


async def test_auto_suspend_after_idle_then_auto_delete(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    lifecycle = LifecyclePolicy(AutoSuspendPolicy(True, 0.3, SuspendMode.MEMORY), AutoDeletePolicy(True, 0.3))
    sandbox = await make_sandbox(SandboxSpec(lifecycle=lifecycle))
    await sandbox.wait_for_state(SandboxState.SUSPENDED, timeout=60)
    assert sandbox.info.stopped_reason is StoppedReason.IDLE
    await sandbox.wait_for_state(SandboxState.DELETING, timeout=60)
    await runtime.wait_until_gone(GROUP, sandbox.id, timeout=60)
    assert runtime.list_sandboxes(GROUP) == []


async def test_set_lifecycle_changes_the_mode_of_the_next_stop(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    sandbox.set_lifecycle(LifecyclePolicy(AutoSuspendPolicy(False, 300, SuspendMode.DISK)))
    assert (await sandbox.stop()).state is SandboxState.STOPPED


async def test_list_filters_on_labels(runtime: SandboxRuntime, make_sandbox: MakeSandbox) -> None:
    a = await make_sandbox(SandboxSpec(labels={"team": "x", "tier": "1"}))
    await make_sandbox(SandboxSpec(labels={"team": "y"}))
    assert [s.id for s in runtime.list_sandboxes(GROUP, {"team": "x"})] == [a.id]
    assert len(runtime.list_sandboxes(GROUP)) == 2


async def test_stats_report_usage(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    await sandbox.write_file("/root/blob", os.urandom(1 << 20))
    await sandbox.exec_shell("python3 -c 'sum(range(3_000_000))'")
    stats = await sandbox.stats()
    assert stats.cpu_usage_ns > 0
    assert stats.memory_used_bytes > 0
    assert stats.disk_used_bytes >= 1 << 20
    assert stats.processes >= 2


async def test_a_ready_sandbox_is_taken_by_a_matching_create_and_replaced(tmp_path: Path) -> None:
    async with await SandboxRuntime.open(tmp_path / "sbx", ready_sandboxes=1) as rt:
        rt.create_group(GROUP)
        await rt.wait_ready()
        taken = await rt.create(GROUP, SandboxSpec(labels={"a": "1"}))
        assert rt.ready_count == 0
        sandbox = rt.sandbox(GROUP, taken.id)
        result = await sandbox.exec_shell("hostname; echo $E", env={"E": "mine"})
        assert result.stdout == f"sandbox-{taken.id[:8]}\nmine\n"
        await sandbox.write_file("/root/a.txt", b"x")
        assert (sandbox.disk / "root" / "a.txt").exists()  # its disk moved into the group
        await rt.wait_ready()
        # Other resources than the defaults start a sandbox of their own.
        other = await rt.create(GROUP, SandboxSpec(resources=SandboxResources(memory_bytes=1 << 30)))
        assert rt.ready_count == 1
        assert other.resources.memory_bytes == 1 << 30


async def test_undecodable_output_is_replaced_not_fatal(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    result = await sandbox.exec_shell(r"printf 'a\377b'; printf '\376' >&2")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "a\ufffdb", "\ufffd")


async def test_deleting_a_full_directory_needs_recursive(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    await sandbox.write_file("/root/d/f", b"x")
    with pytest.raises(ConflictingOperation):
        await sandbox.delete_file("/root/d")
    await sandbox.delete_file("/root/d/f")
    await sandbox.delete_file("/root/d")
    with pytest.raises(FileNotFound):
        await sandbox.stat_file("/root/d")
