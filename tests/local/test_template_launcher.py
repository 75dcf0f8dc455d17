"""The fork-template kernel launcher without a sandbox, and through the real pool (both modes)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil
import pytest

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime._kernel_template_launcher import TemplateChild, TemplateKernelLauncher
from autogen_aca_sessions.local.runtime.bubblewrap import Sandbox
from autogen_aca_sessions.local.runtime.kernel import LaunchedKernel, PlainKernelLauncher
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import Session, SessionManager

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]


def child_of(session: Session) -> TemplateChild:
    kernel = session.kernel
    assert kernel is not None
    process = kernel.launched.process
    assert isinstance(process, TemplateChild)
    return process


def living(pids: set[int]) -> list[int]:
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.usefixtures("patient_interrupts")
async def test_unsandboxed_kernels_run_code_keep_state_show_images_and_recover(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("none"))
    pids: set[int] = set()
    async with (
        launcher,
        SessionManager(
            root=root, config=PoolConfig(sandbox="none", ready_sessions=0), launcher=launcher
        ) as m,
    ):
        assert launcher.template_pid is not None
        pids.add(launcher.template_pid)
        a = await m.get_or_create("a")
        b = await m.get_or_create("b")
        out = await a.execute(
            "import os, sys\nx = 1\n"
            "[[m in sys.modules for m in ('numpy', 'pandas', 'matplotlib.pyplot')], os.getcwd()]",
            timeout=60,
            max_output_chars=1000,
        )
        assert out.result == [[True, True, True], str(a.data_dir)], out.stderr
        assert (await b.execute("'x' in globals()", timeout=60, max_output_chars=100)).result is False
        assert (await a.execute("x + 1", timeout=60, max_output_chars=100)).result == 2
        image = await a.execute(
            "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n0", timeout=60, max_output_chars=100
        )
        assert len(image.images) == 1, image.stderr
        assert psutil.Process(child_of(a).pid).ppid() == launcher.template_pid
        pids.update({child_of(a).pid, child_of(b).pid})

        timed = await a.execute(
            "import time\nwhile True:\n    time.sleep(0.05)", timeout=1, max_output_chars=100
        )
        assert timed.outcome is Outcome.TIMED_OUT_INTERRUPTED, timed.stderr
        assert (await a.execute("x", timeout=60, max_output_chars=100)).result == 1

        crash = await a.execute("import os\nos._exit(7)", timeout=60, max_output_chars=100)
        assert crash.outcome is Outcome.KERNEL_DIED
        assert "status 7" in (crash.message or "")
        after = await a.execute("'x' in globals()", timeout=60, max_output_chars=100)
        assert after.outcome is Outcome.SUCCEEDED
        assert after.result is False
        pids.add(child_of(a).pid)

        killed = child_of(b)
        os.kill(killed.pid, signal.SIGKILL)
        assert await asyncio.wait_for(killed.wait(), 10) == -signal.SIGKILL
        again = await b.execute("1 + 1", timeout=60, max_output_chars=100)
        assert again.result == 2
        assert again.state_lost
        pids.add(child_of(b).pid)
        private = launcher._private
        assert private is not None
    assert living(pids) == []
    assert not root.exists()
    assert not private.exists()


async def test_a_dead_template_takes_its_kernels_down_and_the_next_launch_starts_a_new_one(
    tmp_path: Path,
) -> None:
    async with (
        TemplateKernelLauncher(sandbox=Sandbox.resolve("none")) as launcher,
        SessionManager(
            root=tmp_path / "pool", config=PoolConfig(sandbox="none", ready_sessions=0), launcher=launcher
        ) as m,
    ):
        session = await m.get_or_create("s")
        assert (await session.execute("1", timeout=60, max_output_chars=10)).result == 1
        first_template = launcher.template_pid
        kernel = child_of(session)
        assert first_template is not None
        os.kill(first_template, signal.SIGKILL)
        assert await asyncio.wait_for(kernel.wait(), 10) == -signal.SIGKILL
        # The session sees its kernel dead before the call and runs it on a new one.
        again = await session.execute("3", timeout=60, max_output_chars=10)
        assert again.result == 3, again.stderr
        assert again.state_lost
        assert launcher.template_pid not in (None, first_template)
        await asyncio.sleep(0.2)
        assert living({kernel.pid}) == []


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
async def test_the_pools_first_session_is_a_plain_kernel_and_the_next_are_forked(
    tmp_path: Path, sandbox: str
) -> None:
    from autogen_aca_sessions import LocalSessionPool
    from autogen_aca_sessions.client import SessionsClient

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    pool = LocalSessionPool(
        sandbox=sandbox, kernel_launcher="fork", ready_sessions=1, root_dir=tmp_path / "root"
    )
    probe = "import os, sys\nv = 5\n['pandas' in sys.modules, os.getcwd()]"
    expected_cwd = "/mnt/data" if sandbox == "bwrap" else None
    async with pool:
        manager = pool.manager
        assert isinstance(manager, SessionManager)
        async with SessionsClient(pool.endpoint, pool.async_credential) as client:
            # The pool's first kernel started while the template was starting: a plain one,
            # in the same sandbox, without the data stack imported ahead.
            plain = await client.execute("plain", probe)
            assert plain.succeeded, plain.stderr
            assert plain.result[0] is False
            assert (await client.execute("plain", "import pandas\nv * 3")).result == 15
            first = await client.execute("one", probe)
            assert first.succeeded, first.stderr
            assert first.result[0] is True
            if expected_cwd is not None:
                assert plain.result[1] == expected_cwd
                assert first.result[1] == expected_cwd
            second = await client.execute("one", "v * 2")
            assert second.result == 10
        plain_session = manager.get("plain")
        assert plain_session is not None
        assert plain_session.kernel is not None
        plain_process = plain_session.kernel.launched.process
        assert not isinstance(plain_process, TemplateChild)
        session = manager.get("one")
        assert session is not None
        child = child_of(session)
        assert (child.holder is not None) == (sandbox == "bwrap")
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert living(left) == []
    assert living({child.pid, plain_process.pid}) == []
    assert not (tmp_path / "root" / "sessions").exists()


class _CountingLauncher:
    """A real plain launcher whose launches are recorded and may be held until released."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.inner = PlainKernelLauncher(Sandbox.resolve("none"), egress=False, hide_paths=(), mpl_cache=None)
        self.launched: list[LaunchedKernel] = []
        self.calls = 0
        self.first_called = asyncio.Event()
        self.release_first = asyncio.Event()
        if not hold_first:
            self.release_first.set()

    async def launch(self, *, data_dir: Path, run_dir: Path, uid: int | None) -> LaunchedKernel:
        self.calls += 1
        if self.calls == 1:
            self.first_called.set()
            await self.release_first.wait()
        launched = await self.inner.launch(data_dir=data_dir, run_dir=run_dir, uid=uid)
        self.launched.append(launched)
        return launched


async def test_a_new_session_takes_over_the_kernel_the_filler_is_starting(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    launcher = _CountingLauncher()
    config = PoolConfig(sandbox="none", ready_sessions=1)
    async with SessionManager(root=tmp_path / "pool", config=config, launcher=launcher) as manager:
        await launcher.first_called.wait()
        session = await manager.get_or_create("a")
        out = await session.execute("1 + 1", timeout=60, max_output_chars=100)
        assert out.result == 2, out.stderr
        kernel = session.kernel
        assert kernel is not None
        # The filler's kernel, not one of its own; the filler then starts the ready one.
        assert kernel.launched is launcher.launched[0]
        await asyncio.wait_for(manager.wait_first_ready(), 120)
        assert manager.ready_count == 1
        assert launcher.calls == 2
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert living(left) == []


async def test_deleting_a_session_whose_kernel_was_starting_leaves_the_filler_filling(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    launcher = _CountingLauncher(hold_first=True)
    config = PoolConfig(sandbox="none", ready_sessions=1)
    async with SessionManager(root=tmp_path / "pool", config=config, launcher=launcher) as manager:
        await launcher.first_called.wait()
        session = await manager.get_or_create("a")
        running = asyncio.ensure_future(session.execute("1", timeout=60, max_output_chars=100))
        assert await manager.delete("a")
        out = await asyncio.wait_for(running, 60)
        assert out.outcome is not Outcome.SUCCEEDED
        # The start it took over was abandoned; the filler goes on to a ready kernel of its own.
        await asyncio.wait_for(manager.wait_first_ready(), 120)
        assert manager.ready_count == 1
        assert launcher.calls == 2
        assert len(launcher.launched) == 1
        fresh = await manager.get_or_create("b")
        assert (await fresh.execute("2 + 2", timeout=60, max_output_chars=100)).result == 4
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert living(left) == []


async def test_cli_serve_kernel_launcher_fork_serves_forked_kernels_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    import re
    import shlex
    import sys

    from autogen_aca_sessions.client import SessionsClient

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    argv = [sys.executable, "-m", "autogen_aca_sessions.cli", "serve", "--port", "0"]
    argv += ["--sandbox", "bwrap", "--kernel-launcher", "fork", "--ready-sessions", "1"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(tmp_path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    found: dict[str, str] = {}
    descendants: set[int] = set()
    try:
        while len(found) < 2:
            line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
            assert line, "serve exited before printing its endpoint"
            exported = re.match(r"\s*export (ACA_POOL_MANAGEMENT_ENDPOINT|ACA_SESSIONS_API_KEY)=(.+)$", line)
            if exported:
                found[exported.group(1)] = shlex.split(exported.group(2))[0]
        endpoint, key = found["ACA_POOL_MANAGEMENT_ENDPOINT"], found["ACA_SESSIONS_API_KEY"]
        async with SessionsClient(endpoint, key) as client:
            result = await client.execute("cli", "import os\n[os.getcwd(), os.getuid() != 0]")
            assert result.succeeded, result.stderr
            assert result.result == ["/mnt/data", True]
        tree = psutil.Process(process.pid).children(recursive=True)
        descendants = {p.pid for p in tree}
        commands = [" ".join(p.cmdline()) for p in tree if p.is_running()]
        assert any("_kernel_template.py" in c for c in commands)
    finally:
        if process.returncode is None:
            process.terminate()
        assert await asyncio.wait_for(process.wait(), 60) == 0
    await asyncio.sleep(0.2)
    assert living(descendants) == []


async def test_a_launcher_weaker_than_the_managers_sandbox_refuses_to_start_kernels(tmp_path: Path) -> None:
    # The manager sandboxes (its sessions get their own uids); the launcher was made without.
    async with (
        TemplateKernelLauncher(sandbox=Sandbox.resolve("none")) as launcher,
        SessionManager(
            root=tmp_path / "pool", config=PoolConfig(sandbox="bwrap", ready_sessions=0), launcher=launcher
        ) as manager,
    ):
        session = await manager.get_or_create("s")
        out = await session.execute("1", timeout=60, max_output_chars=100)
        assert out.outcome is not Outcome.SUCCEEDED
        assert session.kernel is None


async def test_closing_while_the_template_starts_leaves_no_unretrieved_exception(tmp_path: Path) -> None:
    """A pool closed during its template's start-up (e.g. SIGTERM right after an ARM PUT) must
    not print asyncio's "Future exception was never retrieved" on the console."""
    import gc

    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("none"))
        starting = asyncio.ensure_future(launcher.start())
        await asyncio.sleep(0.3)  # the template is importing its modules
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        await launcher.close()
        await asyncio.sleep(0.2)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not [c for c in seen if "never retrieved" in str(c.get("message", ""))], seen
