"""Running a command in a real bubblewrap sandbox attached to an egress gateway."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from autogen_aca_sessions.local.runtime.bubblewrap import interpreter_paths
from autogen_aca_sessions.local.runtime.egress import EgressAttachment

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not installed")
CA_INSIDE = "/run/egress-test-ca.pem"
"""Where the world's CA is shown inside the sandbox."""


def interpreter_binds() -> list[str]:
    """bwrap options showing the interpreter again where a fresh /tmp or /run hides it (a
    checkout, and its venv, may live under /tmp)."""
    binds: list[str] = []
    for path in interpreter_paths():
        if path.is_relative_to("/tmp") or path.is_relative_to("/run"):
            binds += ["--ro-bind", str(path), str(path)]
    return binds


async def run_sandboxed(
    attachment: EgressAttachment, argv: list[str], *, ca_file: Path | None = None, timeout: float = 60
) -> tuple[int, str, str]:
    """Run ``argv`` in its own user, pid and network namespace behind the attachment's forwarder."""
    assert BWRAP is not None
    args = [
        BWRAP,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--perms", "1777", "--tmpfs", "/tmp",
        "--tmpfs", "/run",
        "--unshare-user", "--uid", "1000", "--gid", "1000",
        "--unshare-pid",
        "--unshare-ipc",
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
    ]  # fmt: skip
    args += interpreter_binds()
    if ca_file is not None:
        args += ["--ro-bind", str(ca_file), CA_INSIDE]
    args += attachment.bwrap_args
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **attachment.env}
    proc = await asyncio.create_subprocess_exec(
        *args,
        *attachment.wrap(argv),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
