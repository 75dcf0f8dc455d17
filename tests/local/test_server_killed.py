"""A server killed outright (SIGKILL: no clean-up runs) takes its sandboxes with it: nothing it
started stays alive re-parented to init (issue 22 item 4: a kernel's bwrap holder did)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

SERVER = """
import asyncio, sys
from autogen_aca_sessions.local import LocalSessionPool

async def main():
    async with LocalSessionPool(sandbox="bwrap", ready_sessions=1) as pool:
        session = await pool.manager.get_or_create("doomed")
        out = await session.execute("import subprocess; subprocess.Popen(['sleep', '600']); 1",
                                    timeout=60, max_output_chars=1000)
        print("ready", out.outcome, flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


def _identity(process: psutil.Process) -> tuple[int, float] | None:
    try:
        return process.pid, process.create_time()
    except psutil.Error:
        return None


def _alive(identity: tuple[int, float]) -> bool:
    pid, created = identity
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.timeout(180)
def test_a_killed_server_leaves_no_sandbox_process_behind() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandboxed kernels' holders run under per-session uids only as root")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("ready"), line + (server.stderr.read() if server.stderr else "")
        started = [
            identity
            for child in psutil.Process(server.pid).children(recursive=True)
            if (identity := _identity(child)) is not None
        ]
        # The template, a kernel, its holder (bwrap and sleep) and the session's own sleep at least.
        assert len(started) >= 4, started
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    deadline = time.monotonic() + 60
    while any(_alive(identity) for identity in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [psutil.Process(pid).cmdline() for pid, created in started if _alive((pid, created))]
    assert left == []
