"""PROTOTYPE: kernels forked from a pre-imported template process (unsandboxed pools only)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil
import pytest

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime._kernel_template_launcher import TemplateKernelLauncher
from autogen_aca_sessions.local.runtime.bubblewrap import Sandbox
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import SessionManager

pytestmark = pytest.mark.timeout(180)


async def test_forked_kernels_run_code_share_imports_and_clean_up(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("none"))
    await launcher.start()
    try:
        async with SessionManager(
            root=tmp_path / "pool", config=PoolConfig(sandbox="none", ready_sessions=0), launcher=launcher
        ) as m:
            a = await m.get_or_create("a")
            b = await m.get_or_create("b")
            out_a = await a.execute(
                "import sys, os\nx = 1\n['numpy' in sys.modules, os.getcwd()]",
                timeout=60,
                max_output_chars=1000,
            )
            out_b = await b.execute("'x' in globals()", timeout=60, max_output_chars=1000)
            assert out_a.result == [True, str(a.data_dir)], out_a.stderr
            assert out_b.result is False
            image = await a.execute(
                "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n0", timeout=60, max_output_chars=1000
            )
            assert len(image.images) == 1, image.stderr
            unique = []
            for session in (a, b):
                kernel = session.kernel
                assert kernel is not None
                unique.append(psutil.Process(kernel.pid).memory_full_info().uss / 2**20)
            print(
                f"forked kernels: unique memory {', '.join(f'{u:.1f}' for u in unique)} MiB "
                "(numpy, pandas and matplotlib imported by the template)"
            )
            kernel = b.kernel
            assert kernel is not None
            os.kill(kernel.pid, signal.SIGKILL)
            for _ in range(250):
                if not kernel.alive:
                    break
                await asyncio.sleep(0.02)
            assert kernel.exit_status == -signal.SIGKILL
            again = await b.execute("1 + 1", timeout=60, max_output_chars=100)
            assert again.result == 2
            assert again.state_lost
            crash = await a.execute("import os\nos._exit(7)", timeout=60, max_output_chars=100)
            assert crash.outcome is Outcome.KERNEL_DIED
            assert "status 7" in (crash.message or "")
    finally:
        await launcher.close()
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not [
        p for p in left if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]


async def test_the_probed_module_list_is_cached_and_the_next_template_skips_the_probe(tmp_path: Path) -> None:
    cache = tmp_path / "cache"

    async def start_template() -> bool | None:
        launcher = TemplateKernelLauncher(sandbox=Sandbox.resolve("none"), probe_cache=cache)
        await launcher.start()
        try:
            config = PoolConfig(sandbox="none", ready_sessions=0)
            async with SessionManager(root=tmp_path / "pool", config=config, launcher=launcher) as manager:
                session = await manager.get_or_create("s")
                out = await session.execute(
                    "import sys\n[m in sys.modules for m in ('numpy', 'pandas', 'matplotlib.pyplot')]",
                    timeout=60,
                    max_output_chars=1000,
                )
                assert out.result == [True, True, True], out.stderr
        finally:
            await launcher.close()
        return launcher.probed

    assert await start_template() is True
    (kept,) = cache.glob("template-modules-*.txt")
    names = kept.read_text().split("\n")
    assert "pandas.core.frame" in names
    assert "matplotlib.pyplot" in names
    assert await start_template() is False
    # A damaged list is not used: the probe runs again and writes a good one.
    kept.write_text("numpy\nnot a module; import os\n")
    assert await start_template() is True
    assert "pandas.core.frame" in kept.read_text().split("\n")
