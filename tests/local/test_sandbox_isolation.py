"""What sandboxed session code can and cannot do (real bubblewrap, real kernels)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.bubblewrap import ResourceLimits
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import Session, SessionManager

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

SECRET_ENV = "ACA_RUNTIME_TEST_SECRET"
LIMITS = ResourceLimits(
    memory_bytes=2 * 1024**3, max_processes=48, file_size_bytes=8 * 1024**2, open_files=200
)


MANAGER_CONFIG = PoolConfig(ready_sessions=1, sandbox="bwrap", limits=LIMITS, max_execution_seconds=60)
MANAGER_ENV = {SECRET_ENV: "do-not-leak"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(manager: SessionManager) -> Session:
    return await manager.get_or_create("sandboxed")


async def value(session: Session, code: str) -> Any:
    out = await session.execute(code, timeout=30, max_output_chars=100_000)
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    return out.result


async def test_the_pool_reports_bwrap_isolation(manager: SessionManager) -> None:
    assert manager.isolation == "bwrap"
    assert manager.unsandboxed_warning is None


async def test_no_network_without_egress(session: Session, listener: int) -> None:
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


async def test_egress_pools_reach_the_host_network(tmp_path: Path, listener: int) -> None:
    async with SessionManager(
        root=tmp_path / "p", config=PoolConfig(pool_type="Shell", sandbox="bwrap", egress=True)
    ) as m:
        shell = await m.get_or_create("egress")
        out = await shell.run_shell(
            f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo connected", timeout=10, max_output_chars=100
        )
    assert out.stdout == "connected\n", out.stderr


async def test_code_cannot_see_other_sessions_or_the_pool_root(
    manager: SessionManager, session: Session
) -> None:
    other = await manager.get_or_create("neighbour")
    await value(other, "open('neighbour-secret.txt', 'w').write('mine')\n0")
    targets = [str(other.data_dir), str(manager.root), str(other.data_dir / "neighbour-secret.txt")]
    code = (
        "import os\nout = {}\n"
        f"for p in {targets!r}:\n"
        "    try:\n"
        "        out[p] = os.listdir(p) if os.path.isdir(p) else open(p).read()\n"
        "    except OSError as e:\n"
        "        out[p] = None\n"
        "out"
    )
    seen = await value(session, code)
    assert seen[str(other.data_dir)] is None
    assert seen[str(other.data_dir / "neighbour-secret.txt")] is None
    assert seen[str(manager.root)] in (None, [])
    assert await value(session, "import os\nos.listdir('/mnt/data')") == []


async def test_code_cannot_see_host_processes(session: Session) -> None:
    pids = await value(session, "import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    assert os.getpid() not in pids or len(pids) < 10
    assert max(pids) < 100
    mine = await value(session, "import os\nos.getpid()")
    assert mine < 10
    signal_server = await value(
        session,
        f"import os\ntry:\n    os.kill({os.getpid()}, 0)\n    r = 'sent'\n"
        "except OSError as e:\n    r = type(e).__name__\nr",
    )
    assert signal_server != "sent"


async def test_code_runs_unprivileged_and_cannot_read_root_only_files(session: Session) -> None:
    facts = await value(
        session,
        "import os\n"
        "caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]\n"
        "try:\n    open('/etc/shadow').read(); shadow = 'read'\n"
        "except OSError as e:\n    shadow = type(e).__name__\n"
        "home = os.listdir('/root') if os.path.isdir('/root') else None\n"
        "[os.getuid(), int(caps, 16), shadow, os.environ.get('HOME')]",
    )
    uid, caps, shadow, home = facts
    assert uid != 0
    assert caps == 0
    assert shadow == "PermissionError"
    assert home == "/tmp"


async def test_the_servers_environment_does_not_leak(session: Session) -> None:
    assert os.environ.get(SECRET_ENV) == "do-not-leak"
    seen = await value(
        session, f"import os\n[os.environ.get({SECRET_ENV!r}), 'do-not-leak' in str(os.environ)]"
    )
    assert seen == [None, False]


async def test_the_file_system_is_read_only_except_data_and_tmp(session: Session) -> None:
    result = await value(
        session,
        "import os\nout = {}\n"
        "for p in ['/usr/aca-probe', '/etc/aca-probe', '/tmp/aca-probe', '/mnt/data/aca-probe']:\n"
        "    try:\n        open(p, 'w').write('x'); out[p] = 'written'\n"
        "    except OSError as e:\n        out[p] = type(e).__name__\n"
        "out",
    )
    assert result["/usr/aca-probe"] != "written"
    assert result["/etc/aca-probe"] != "written"
    assert result["/tmp/aca-probe"] == "written"
    assert result["/mnt/data/aca-probe"] == "written"
    assert not await asyncio.to_thread(os.path.exists, "/tmp/aca-probe")  # the sandbox has its own /tmp


async def test_resource_limits_are_in_force(session: Session) -> None:
    limits = await value(
        session,
        "import resource as r\n"
        "[r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_FSIZE)[0], r.getrlimit(r.RLIMIT_NOFILE)[0], "
        "r.getrlimit(r.RLIMIT_NPROC)[0]]",
    )
    assert limits == [LIMITS.memory_bytes, LIMITS.file_size_bytes, LIMITS.open_files, LIMITS.max_processes]
    too_big = await session.execute(
        "open('big.bin', 'wb').write(b'x' * (9 * 1024**2))", timeout=30, max_output_chars=10_000
    )
    assert too_big.outcome is Outcome.FAILED
    assert too_big.error_name == "OSError"
    assert "File too large" in (too_big.error_value or "")
    memory = await session.execute("b = bytearray(3 * 1024**3)", timeout=30, max_output_chars=10_000)
    assert memory.error_name == "MemoryError"


async def test_a_fork_bomb_is_bounded_and_the_session_survives(session: Session) -> None:
    started = await value(
        session,
        "import subprocess\nkids = []\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        kids.append(subprocess.Popen(['sleep', '60']))\n"
        "except OSError:\n"
        "    pass\n"
        "n = len(kids)\nfor k in kids:\n    k.kill()\n    k.wait()\nn",
    )
    assert LIMITS.max_processes is not None
    assert 0 < started < LIMITS.max_processes
    assert await value(session, "1 + 1") == 2


async def test_the_process_limit_is_per_session(manager: SessionManager, session: Session) -> None:
    other = await manager.get_or_create("process-neighbour")
    hold = (
        "import subprocess\nheld = []\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        held.append(subprocess.Popen(['sleep', '60']))\n"
        "except OSError:\n"
        "    pass\n"
        "len(held)"
    )
    held = await value(session, hold)
    assert held > 10
    try:
        assert await value(other, "import subprocess\nsubprocess.run(['true']).returncode") == 0
    finally:
        await value(session, "for k in held:\n    k.kill()\n    k.wait()\n0")


async def test_the_manager_refuses_to_start_with_bwrap_missing(tmp_path: Path) -> None:
    manager = SessionManager(
        root=tmp_path / "pool", config=PoolConfig(sandbox="bwrap"), bwrap_path=str(tmp_path / "nope")
    )
    with pytest.raises(RuntimeError, match="bubblewrap"):
        await manager.start()
    await manager.close()
    assert not (tmp_path / "pool").exists()


async def test_unsandboxed_code_runs_in_the_sessions_data_dir(tmp_path: Path) -> None:
    async with SessionManager(root=tmp_path / "p", config=PoolConfig(pool_type="Shell", sandbox="none")) as m:
        assert m.isolation == "none"
        shell = await m.get_or_create("plain")
        out = await shell.run_shell("pwd; ulimit -f", timeout=10, max_output_chars=1000)
        assert out.stdout.splitlines()[0] == str(shell.data_dir)
        assert out.stdout.splitlines()[1] == str(ResourceLimits().file_size_bytes // 1024)  # type: ignore[operator]


async def test_unsandboxed_kernels_work_with_relative_paths(tmp_path: Path) -> None:
    async with SessionManager(root=tmp_path / "p", config=PoolConfig(sandbox="none", ready_sessions=0)) as m:
        s = await m.get_or_create("plain")
        out = await s.execute(
            "import os\nopen('here.txt', 'w').write('1')\nos.getcwd()", timeout=30, max_output_chars=1000
        )
        assert out.result == str(s.data_dir)
        assert (s.data_dir / "here.txt").exists()


async def test_isolated_sessions_do_not_block_the_event_loop(session: Session) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        await value(session, "import time\ntime.sleep(0.5)\n0")
    finally:
        task.cancel()
    assert ticks > 10
