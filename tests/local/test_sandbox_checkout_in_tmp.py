"""A checkout (or virtualenv) under /tmp must still be importable by sandboxed kernels.

The sandbox gives each kernel a fresh, empty /tmp; the package's own files have to be shown
again on top of it, or every kernel dies at start-up when the project lives in /tmp (as a
CI clone or a quick `git clone` into /tmp often does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = """
import asyncio, sys, tempfile
from pathlib import Path
import autogen_aca_sessions
from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.sessions import SessionManager

async def main() -> None:
    assert autogen_aca_sessions.__file__.startswith(sys.argv[1]), autogen_aca_sessions.__file__
    with tempfile.TemporaryDirectory() as root:
        manager = SessionManager(root=Path(root), config=PoolConfig(ready_sessions=0, sandbox="bwrap"))
        await manager.start()
        try:
            session = await manager.get_or_create("tmp-checkout")
            code = "import os; print(os.getcwd()); 6 * 7"
            out = await session.execute(code, timeout=60, max_output_chars=1000)
            print("OUTCOME", out.outcome.value, repr(out.stdout), out.result, out.stderr[-500:])
        finally:
            await manager.close()

asyncio.run(main())
"""


def test_a_package_imported_from_under_tmp_runs_in_a_sandboxed_kernel() -> None:
    checkout = Path(tempfile.mkdtemp(prefix="aca-checkout-", dir="/tmp"))
    try:
        shutil.copytree(SRC / "autogen_aca_sessions", checkout / "src" / "autogen_aca_sessions")
        env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
        completed = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(checkout / "src")],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert "OUTCOME succeeded '/mnt/data\\n' 42" in completed.stdout, completed.stdout + completed.stderr
    finally:
        shutil.rmtree(checkout, ignore_errors=True)
