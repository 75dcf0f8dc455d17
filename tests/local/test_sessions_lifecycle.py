"""Session lifecycle: ready kernels, creation, reaping, deletion, the pool limit, metadata, close."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.bubblewrap import PidsCgroup, Sandbox
from autogen_aca_sessions.local.runtime.kernel import KernelLauncher, LaunchedKernel, PlainKernelLauncher
from autogen_aca_sessions.local.runtime.outcome import Outcome, SessionLimitReached
from autogen_aca_sessions.local.runtime.sessions import SessionManager

pytestmark = pytest.mark.timeout(120)


async def eventually(condition: Callable[[], bool], *, within: float = 30.0) -> None:
    """Wait for ``condition`` (a generous bound; the figure of interest is printed, not asserted)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def manager_at(root: Path, launcher: KernelLauncher | None = None, **kwargs: Any) -> SessionManager:
    defaults: dict[str, Any] = {"ready_sessions": 0, "sandbox": "bwrap", "cooldown_period_seconds": 600}
    defaults.update(kwargs)
    return SessionManager(root=root, config=PoolConfig(**defaults), launcher=launcher)


async def test_a_new_identifier_gets_a_ready_kernel_and_the_pool_refills(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", ready_sessions=1) as manager:
        await eventually(lambda: manager.ready_count == 1)
        began = time.monotonic()
        session = await manager.get_or_create("fresh")
        out = await session.execute("21 * 2", timeout=10, max_output_chars=100)
        took = time.monotonic() - began
        print(f"new identifier on a ready kernel: first result after {1000 * took:.0f} ms")
        assert out.result == 42
        assert manager.ready_count == 0 or manager.ready_count == 1
        assert not out.state_lost
        await eventually(lambda: manager.ready_count == 1)
        assert len(manager.sessions()) == 1  # ready kernels are not sessions


async def test_get_never_creates_and_get_or_create_is_idempotent(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool") as manager:
        assert manager.get("nobody") is None
        assert manager.sessions() == []
        first = await manager.get_or_create("same")
        again = await manager.get_or_create("same")
        assert first is again
        assert manager.get("same") is first
        assert [s.identifier for s in manager.sessions()] == ["same"]
        assert first.data_dir.is_dir()


async def test_touch_moves_expiry_and_changes_the_etag(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", cooldown_period_seconds=300) as manager:
        session = await manager.get_or_create("timed")
        etag, expiry = session.etag, session.expire_at
        assert (expiry - session.last_accessed_at).total_seconds() == 300
        await asyncio.sleep(0.01)
        session.touch()
        assert session.etag != etag
        assert session.expire_at > expiry


async def test_an_idle_session_is_reaped_after_the_cooldown(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", cooldown_period_seconds=0.4) as manager:
        session = await manager.get_or_create("idle")
        data_dir = session.data_dir
        await eventually(lambda: manager.get("idle") is None, within=10)
        await eventually(lambda: not data_dir.exists(), within=10)
        again = await manager.get_or_create("idle")
        assert again is not session


async def test_touching_keeps_a_session_and_a_running_call_is_never_reaped(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", cooldown_period_seconds=1.0) as manager:
        kept = await manager.get_or_create("kept")
        busy = await manager.get_or_create("busy")
        call = asyncio.ensure_future(
            busy.execute("import time\ntime.sleep(3)\n'ok'", timeout=30, max_output_chars=10)
        )
        for _ in range(25):
            kept.touch()
            await asyncio.sleep(0.1)
        assert manager.get("kept") is kept
        out = await call
        assert out.result == "ok"
        assert manager.get("busy") is busy  # the call touched it when it ended
        await eventually(lambda: manager.get("busy") is None and manager.get("kept") is None, within=10)


async def test_delete_frees_the_slot_at_once_and_removes_the_data(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", max_concurrent_sessions=1, ready_sessions=1) as manager:
        first = await manager.get_or_create("one")
        (first.data_dir / "f.txt").write_text("x")
        with pytest.raises(SessionLimitReached) as caught:
            await manager.get_or_create("two")
        assert caught.value.max_sessions == 1
        assert await manager.delete("one")
        assert not first.data_dir.exists()
        assert await manager.delete("one") is False
        second = await manager.get_or_create("two")
        assert second.identifier == "two"
        assert manager.get("one") is None


async def test_the_pool_limit_counts_sessions_not_ready_kernels(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", max_concurrent_sessions=1, ready_sessions=1) as manager:
        await eventually(lambda: manager.ready_count == 1, within=60)
        await manager.get_or_create("a")
        await eventually(lambda: manager.ready_count == 1, within=60)
        with pytest.raises(SessionLimitReached):
            await manager.get_or_create("b")
        assert manager.ready_count == 1  # the refused call did not take the ready kernel
        await manager.get_or_create("a")  # existing sessions are still served


async def test_metadata_describes_the_kernel_and_its_packages(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool") as manager:
        info = manager.metadata()
    assert info.runtimes[0].name == "Python"
    assert info.runtimes[0].version.count(".") == 2
    assert info.jupyter_kernel is not None
    assert info.jupyter_kernel.name == "python3"
    from importlib.metadata import version

    assert info.jupyter_kernel.version == version("ipykernel")
    names = [p.name.lower() for p in info.pre_installed_packages]
    assert {"numpy", "pandas", "matplotlib", "ipykernel"} <= set(names)
    assert names == sorted(names, key=lambda n: n.replace("_", "-"))
    assert info.created_at.tzinfo is not None


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


async def test_close_kills_every_kernel_and_removes_every_directory(tmp_path: Path) -> None:
    root = tmp_path / "made-by-manager"
    before = _descendants()
    # Other pools of this process (the pytest plugin's, shared by the test session) have groups too.
    probe = PidsCgroup.find()
    groups_before = set(probe.base.glob(f"aca-{os.getpid()}-*")) if probe is not None else set()
    manager = manager_at(root, ready_sessions=1)
    await manager.start()
    run_base = manager._run_base
    assert run_base is not None
    await eventually(lambda: manager.ready_count == 1, within=60)
    session = await manager.get_or_create("busy-at-close")
    await session.execute(
        "import subprocess\nchild = subprocess.Popen(['sleep', '300'])", timeout=10, max_output_chars=10
    )
    running = asyncio.ensure_future(
        session.execute("import time\ntime.sleep(60)", timeout=90, max_output_chars=10)
    )
    await asyncio.sleep(0.2)
    started = _descendants() - before
    assert len(started) >= 3
    await manager.close()
    out = await asyncio.wait_for(running, timeout=10)
    assert out.outcome is Outcome.KERNEL_DIED
    await eventually(lambda: not (_descendants() - before), within=10)
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in started
    )
    assert not root.exists()
    assert not run_base.exists()
    cgroup = manager.sandbox.cgroup
    if cgroup is not None:
        assert not set(cgroup.base.glob(f"aca-{os.getpid()}-*")) - groups_before


async def test_close_keeps_a_root_it_did_not_make(tmp_path: Path) -> None:
    root = tmp_path / "given"
    root.mkdir()
    (root / "mine.txt").write_text("keep")
    manager = manager_at(root)
    await manager.start()
    await manager.get_or_create("x")
    await manager.close()
    assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]


async def test_calls_after_close_are_refused(tmp_path: Path) -> None:
    manager = manager_at(tmp_path / "pool")
    await manager.start()
    await manager.close()
    with pytest.raises(RuntimeError):
        await manager.get_or_create("late")


EXPECTED_SHELL: list[tuple[str, int, str, str]] = [
    ("echo hello; echo oops >&2; exit 3", 3, "hello\n", "oops\n"),
    ("pwd", 0, "/mnt/data\n", ""),
    ("true", 0, "", ""),
    ("kill -9 $$", 137, "", ""),
]


@pytest.mark.parametrize(("command", "code", "stdout", "stderr"), EXPECTED_SHELL)
async def test_shell_commands_return_exit_code_and_output(
    tmp_path: Path, command: str, code: int, stdout: str, stderr: str
) -> None:
    async with manager_at(tmp_path / "pool", pool_type="Shell") as manager:
        session = await manager.get_or_create("sh")
        out = await session.run_shell(command, timeout=10, max_output_chars=1000)
    assert (out.exit_code, out.stdout, out.stderr) == (code, stdout, stderr)
    assert not out.timed_out


async def test_shell_state_lives_in_files_and_timeouts_exit_124(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", pool_type="Shell") as manager:
        assert manager.metadata().jupyter_kernel is None
        assert manager.metadata().runtimes[0].name == "bash"
        session = await manager.get_or_create("sh")
        await session.run_shell("echo kept > note.txt", timeout=10, max_output_chars=100)
        out = await session.run_shell("cat note.txt", timeout=10, max_output_chars=100)
        assert out.stdout == "kept\n"
        assert (session.data_dir / "note.txt").read_text() == "kept\n"
        out = await session.run_shell("echo before; sleep 30 & sleep 30", timeout=1, max_output_chars=100)
        assert out.exit_code == 124
        assert out.timed_out
        assert out.stdout == "before\n"
        assert "timed out" in out.stderr
        out = await session.run_shell("seq 1 100000", timeout=10, max_output_chars=50)
        assert out.stdout == "".join(f"{i}\n" for i in range(1, 100001))[:50]
        assert out.stdout_length == sum(len(str(i)) + 1 for i in range(1, 100001))


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
async def test_a_shell_command_longer_than_the_argument_limit_runs_and_does_not_see_itself_on_stdin(
    tmp_path: Path, sandbox: str
) -> None:
    # One argv string may be at most 128 KiB (MAX_ARG_STRLEN): the command must not travel in argv.
    filler = "# " + "x" * 300_000 + "\n"
    command = "echo start\n" + filler + 'cat; echo "$#"\necho end'
    async with manager_at(tmp_path / "pool", pool_type="Shell", sandbox=sandbox) as manager:
        session = await manager.get_or_create("sh")
        out = await session.run_shell(command, timeout=20, max_output_chars=1000)
    assert (out.exit_code, out.stdout, out.stderr) == (0, "start\n0\nend\n", "")


async def test_shell_pools_refuse_code_execution(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", pool_type="Shell") as manager:
        session = await manager.get_or_create("sh")
        with pytest.raises(RuntimeError):
            await session.execute("1", timeout=5, max_output_chars=10)


class CountingLauncher:
    """A stand-in for a different launcher (say, fork-from-template) behind the same seam."""

    def __init__(self, inner: PlainKernelLauncher) -> None:
        self.inner = inner
        self.launches: list[Path] = []

    async def launch(self, *, data_dir: Path, run_dir: Path, uid: int | None) -> LaunchedKernel:
        self.launches.append(data_dir)
        return await self.inner.launch(data_dir=data_dir, run_dir=run_dir, uid=uid)


async def test_kernels_are_started_through_the_launcher_given(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    sandbox = await asyncio.to_thread(Sandbox.resolve, "bwrap")
    launcher = CountingLauncher(PlainKernelLauncher(sandbox, egress=False, hide_paths=[root], mpl_cache=None))
    async with manager_at(root, launcher=launcher) as manager:
        session = await manager.get_or_create("custom")
        out = await session.execute("import os\nos.getcwd()", timeout=30, max_output_chars=100)
    assert out.result == "/mnt/data"
    assert launcher.launches == [session.data_dir]


async def test_a_burst_of_new_sessions_all_get_working_kernels(tmp_path: Path) -> None:
    async with manager_at(tmp_path / "pool", ready_sessions=1) as manager:
        sessions = [await manager.get_or_create(f"burst-{i}") for i in range(4)]
        outs = await asyncio.gather(
            *(s.execute(f"{i} * 10", timeout=30, max_output_chars=100) for i, s in enumerate(sessions))
        )
    assert [o.result for o in outs] == [0, 10, 20, 30]
    assert len({s.data_dir for s in sessions}) == 4
