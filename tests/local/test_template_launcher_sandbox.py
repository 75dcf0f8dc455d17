"""Kernels forked from the template keep every promise of the plain launcher's bwrap sandbox.

Real template process, real bubblewrap, real kernels; the pool runs as root here, so each
session also has its own host uid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime._kernel_template_launcher import TemplateChild, TemplateKernelLauncher
from autogen_aca_sessions.local.runtime.bubblewrap import SESSION_UID_BASE, ResourceLimits, Sandbox
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import Session, SessionManager

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

LIMITS = ResourceLimits(
    memory_bytes=3 * 1024**3, max_processes=64, file_size_bytes=8 * 1024**2, open_files=300
)
SECRET_ENV = "ACA_TEMPLATE_TEST_SECRET"


MANAGER_CONFIG = PoolConfig(sandbox="bwrap", limits=LIMITS, ready_sessions=1, max_execution_seconds=60)
MANAGER_ENV = {SECRET_ENV: "do-not-leak"}


def make_launcher(root: Path) -> TemplateKernelLauncher:
    """The manager's launcher: a template forked into bwrap sandboxes, the pool's root hidden."""
    return TemplateKernelLauncher(sandbox=Sandbox.resolve("bwrap", limits=LIMITS), hide_paths=[root])


async def value(session: Session, code: str, timeout: float = 60) -> Any:
    out = await session.execute(code, timeout=timeout, max_output_chars=100_000)
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    return out.result


def child_of(session: Session) -> TemplateChild:
    kernel = session.kernel
    assert kernel is not None
    process = kernel.launched.process
    assert isinstance(process, TemplateChild)
    return process


async def test_the_kernel_is_forked_from_the_template_with_the_data_stack_already_imported(
    manager: SessionManager,
) -> None:
    session = await manager.get_or_create("stack")
    # Nothing imported yet by this session: the modules come from the template.
    loaded = await value(
        session, "import sys\n[m in sys.modules for m in ('numpy', 'pandas', 'matplotlib.pyplot')]"
    )
    assert loaded == [True, True, True]
    assert psutil.Process(child_of(session).pid).ppid() == manager.template_pid
    await value(session, "import numpy as np, pandas as pd\nframe = pd.DataFrame({'a': np.arange(4)})")
    assert await value(session, "int(frame['a'].sum())") == 6
    out = await session.execute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()", timeout=60, max_output_chars=1000
    )
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    assert len(out.images) == 1
    assert out.images[0].data.startswith(b"\x89PNG")


async def test_each_session_sees_only_its_own_data_directory(manager: SessionManager) -> None:
    a = await manager.get_or_create("data-a")
    b = await manager.get_or_create("data-b")
    await value(a, "open('/mnt/data/mine-a.txt', 'w').write('a')")
    await value(b, "open('mine-b.txt', 'w').write('b')")
    assert await value(a, "import os\n[os.getcwd(), sorted(os.listdir('/mnt/data'))]") == [
        "/mnt/data",
        ["mine-a.txt"],
    ]
    assert await value(b, "import os\nsorted(os.listdir('/mnt/data'))") == ["mine-b.txt"]
    assert (a.data_dir / "mine-a.txt").read_text() == "a"
    # The other session's directory is not there even by its host path; the pool root is hidden.
    root = str(manager.root)
    probe = (
        f"import os\n[os.path.exists({str(a.data_dir)!r}), os.path.isdir({root!r}) and os.listdir({root!r})]"
    )
    seen, listing = await value(b, probe)
    assert seen is False
    assert not listing


async def test_no_network_without_egress(manager: SessionManager, listener: int) -> None:
    session = await manager.get_or_create("net")
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {listener}), timeout=2).close()\n"
        "    r = 'connected'\n"
        "except OSError as e:\n"
        "    r = type(e).__name__\n"
        "r"
    )
    assert await value(session, code) != "connected"
    interfaces = await value(session, "import socket\nsorted(n for _, n in socket.if_nameindex())")
    assert interfaces == ["lo"]


async def test_own_pid_namespace_hides_host_processes(manager: SessionManager) -> None:
    session = await manager.get_or_create("pids")
    seen = await value(
        session, "import os\n[os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit())]"
    )
    kernel_pid, visible = seen
    assert kernel_pid != child_of(session).pid  # the host pid is not the one it sees
    assert os.getpid() not in visible or os.getpid() < 10
    assert max(visible) < 50
    assert len(visible) <= 6
    assert await value(session, "import socket\nsocket.gethostname()") == "sandbox"


async def test_runs_as_the_session_uid_without_any_capability(manager: SessionManager) -> None:
    session = await manager.get_or_create("uid")
    status = await value(
        session,
        "import os\n"
        "fields = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "[os.getuid(), os.geteuid(), os.getgid(), os.getgroups(),"
        " [fields[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs')]]",
    )
    uid, euid, gid, groups, caps = status
    assert uid == euid == gid == session.uid
    assert uid >= SESSION_UID_BASE
    assert groups == []
    assert caps == ["0000000000000000"] * 5 + ["1"]
    assert psutil.Process(child_of(session).pid).uids().real == uid
    # Root's files stay closed, and setuid cannot be regained.
    assert await value(session, "import os\nos.access('/etc/shadow', os.R_OK)") is False
    assert (
        await value(
            session, "import os\ntry:\n    os.setuid(0); r = 'root'\nexcept OSError as e:\n    r = e.errno\nr"
        )
        != "root"
    )


async def test_resource_limits_and_read_only_system(manager: SessionManager) -> None:
    session = await manager.get_or_create("limits")
    limits = await value(
        session,
        "import resource as r\n"
        "[r.getrlimit(x)[0] for x in (r.RLIMIT_AS, r.RLIMIT_FSIZE, r.RLIMIT_NOFILE, r.RLIMIT_CORE)]",
    )
    assert limits == [LIMITS.memory_bytes, LIMITS.file_size_bytes, LIMITS.open_files, 0]
    written = await value(
        session,
        "r = []\nfor p in ('/usr/aca-x', '/etc/aca-x', '/tmp/aca-x'):\n"
        "    try:\n        open(p, 'w').close(); r.append('ok')\n"
        "    except OSError as e:\n        r.append(e.errno)\nr",
    )
    assert written[:2] != ["ok", "ok"]
    assert "ok" not in written[:2]
    assert written[2] == "ok"
    assert await value(session, f"import os\nrepr(os.environ.get({SECRET_ENV!r}))") == "None"
    # The initial environment block is the template's (inherited by fork): it must hold no secret.
    environ = await asyncio.to_thread(Path(f"/proc/{child_of(session).pid}/environ").read_bytes)
    assert b"do-not-leak" not in environ
    out = await session.execute("x = bytearray(4 * 1024**3)", timeout=60, max_output_chars=1000)
    assert out.outcome is Outcome.FAILED
    assert out.error_name == "MemoryError"


@pytest.mark.usefixtures("patient_interrupts")
async def test_timeout_interrupts_the_cell_and_keeps_state(manager: SessionManager) -> None:
    session = await manager.get_or_create("timeout")
    await value(session, "kept = 41")
    out = await session.execute(
        "import time\nwhile True:\n    time.sleep(0.05)", timeout=1, max_output_chars=1000
    )
    assert out.outcome is Outcome.TIMED_OUT_INTERRUPTED, out.stderr
    assert not out.state_lost
    assert await value(session, "kept + 1") == 42


async def test_exit_is_seen_on_the_kernel_pid_and_the_next_call_gets_a_new_kernel(
    manager: SessionManager,
) -> None:
    session = await manager.get_or_create("exit")
    await value(session, "state = 1")
    first = child_of(session)
    holder = first.holder
    assert holder is not None
    out = await session.execute("import os\nos._exit(7)", timeout=60, max_output_chars=1000)
    assert out.outcome is Outcome.KERNEL_DIED
    assert out.state_lost
    assert "status 7" in (out.message or "")
    again = await session.execute("'state' in globals()", timeout=60, max_output_chars=100)
    assert again.outcome is Outcome.SUCCEEDED
    assert again.result is False
    # The dead kernel's sandbox went with it.
    await asyncio.wait_for(holder.wait(), 10)
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == psutil.STATUS_ZOMBIE


async def test_a_kernel_killed_from_outside_is_reported_with_its_signal(manager: SessionManager) -> None:
    session = await manager.get_or_create("killed")
    await value(session, "1")
    child = child_of(session)
    os.kill(child.pid, signal.SIGKILL)
    assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    out = await session.execute("1 + 1", timeout=60, max_output_chars=100)
    assert out.outcome is Outcome.SUCCEEDED
    assert out.result == 2
    assert out.state_lost


async def test_egress_pool_reaches_the_host_network(tmp_path: Path, listener: int) -> None:
    # The counterpart of test_no_network_without_egress: the same probe connects with egress.
    root = tmp_path / "egress"
    launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("bwrap"), egress=True, hide_paths=[root])
    manager = SessionManager(
        root=root, config=PoolConfig(sandbox="bwrap", egress=True, ready_sessions=0), launcher=launcher
    )
    async with launcher, manager:
        session = await manager.get_or_create("egress")
        code = (
            f"import socket\nsocket.create_connection(('127.0.0.1', {listener}), timeout=5).close()\n"
            "'connected'"
        )
        assert await value(session, code) == "connected"


async def test_close_leaves_no_process_no_directory_and_no_cgroup(tmp_path: Path) -> None:
    root = tmp_path / "closing"
    launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("bwrap"), hide_paths=[root])
    manager = SessionManager(
        root=root, config=PoolConfig(sandbox="bwrap", ready_sessions=2), launcher=launcher
    )
    await launcher.start()
    await manager.start()
    template_pid = launcher.template_pid
    private = launcher._private
    assert template_pid is not None
    assert private is not None
    pids: set[int] = {template_pid}
    groups: list[Path] = []
    try:
        for name in ("one", "two"):
            session = await manager.get_or_create(name)
            await value(session, "import subprocess\nsubprocess.Popen(['sleep', '600'])\n1")
            child = child_of(session)
            pids.add(child.pid)
            assert child.holder is not None
            pids.update(p.pid for p in psutil.Process(child.holder.pid).children(recursive=True))
            pids.add(child.holder.pid)
            kernel = session.kernel
            assert kernel is not None
            assert kernel.launched.cgroup is not None
            groups.append(kernel.launched.cgroup)
        run_base = session.kernel.launched.run_dir.parent  # type: ignore[union-attr]
    finally:
        await manager.close()
        await launcher.close()
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert not root.exists()
    assert not private.exists()
    assert not run_base.exists()
    assert [g for g in groups if g.exists()] == []


async def test_a_cell_that_ignores_the_interrupt_is_killed_with_its_sandbox(manager: SessionManager) -> None:
    session = await manager.get_or_create("stubborn")
    await value(session, "lost = 1")
    child = child_of(session)
    holder = child.holder
    assert holder is not None
    out = await session.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        timeout=1,
        max_output_chars=1000,
    )
    assert out.outcome is Outcome.TIMED_OUT_RESTARTED
    assert out.state_lost
    assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    assert holder.returncode is not None
    assert await value(session, "'lost' in globals()") is False


def _session_uid_processes() -> set[int]:
    """Live processes running as a session uid that this test process started (its descendants)
    or that were orphaned to init (what a leaked holder becomes), zombies aside."""
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    found: set[int] = set()
    for process in psutil.process_iter(["uids", "status", "ppid"]):
        uids = process.info["uids"]
        if uids is None or not SESSION_UID_BASE <= uids.real < SESSION_UID_BASE + 10_000_000:
            continue
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if process.pid in ours or process.info["ppid"] == 1:
            found.add(process.pid)
    return found


async def test_restarts_then_an_immediate_stop_leave_no_sandbox_holder(tmp_path: Path) -> None:
    """Issue 22 item 4: a kernel restarted twice after timeouts, then stopped at once (the pool
    closing while the replacement kernel's sandbox is still starting), leaves no holder."""
    if os.geteuid() != 0:
        pytest.skip("per-session uids are given only when the server runs as root")
    before = _session_uid_processes()
    stubborn = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)"
    for round_ in range(3):
        root = tmp_path / f"restart-stop-{round_}"
        launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("bwrap"), hide_paths=[root])
        manager = SessionManager(
            root=root, config=PoolConfig(sandbox="bwrap", ready_sessions=1), launcher=launcher
        )
        await launcher.start()
        await manager.start()
        try:
            session = await manager.get_or_create("stubborn")
            for _ in range(2):
                out = await session.execute(stubborn, timeout=0.5, max_output_chars=1000)
                assert out.outcome is Outcome.TIMED_OUT_RESTARTED
            # A third cell starts the replacement kernel's launch; stop without waiting for it.
            pending = asyncio.ensure_future(session.execute("1", timeout=30, max_output_chars=1000))
            await asyncio.sleep(0)
        finally:
            await manager.close()
            await launcher.close()
        with contextlib.suppress(BaseException):
            await pending
    leaked = _session_uid_processes() - before
    assert leaked == set(), [psutil.Process(pid).cmdline() for pid in leaked if psutil.pid_exists(pid)]


async def test_close_during_a_launch_returns_only_when_its_holder_is_gone(tmp_path: Path) -> None:
    """A launch in flight when the launcher closes (its holder started, the kernel not yet forked)
    must not outlive close(): a server that exits right after close() returns kills nothing else."""
    if os.geteuid() != 0:
        pytest.skip("per-session uids are given only when the server runs as root")
    root = tmp_path / "close-mid-launch"
    launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("bwrap"), hide_paths=[root])
    manager = SessionManager(
        root=root, config=PoolConfig(sandbox="bwrap", ready_sessions=0), launcher=launcher
    )
    await launcher.start()
    await manager.start()
    before = _session_uid_processes()
    session = await manager.get_or_create("mid-launch")
    # The first cell launches the session's kernel.
    creating = asyncio.ensure_future(session.execute("1", timeout=30, max_output_chars=100))
    try:
        for _ in range(3000):
            if _session_uid_processes() - before:
                break
            await asyncio.sleep(0.005)
        assert _session_uid_processes() - before, "the holder never started"
        await launcher.close()
        # Nothing else may run between close() returning and this look.
        assert _session_uid_processes() - before == set()
    finally:
        with contextlib.suppress(BaseException):
            await creating
        await manager.close()
