"""The runtime directory of one kernel, prepared the same way for every launcher.

Both launchers (a fresh interpreter per kernel, or a fork of the template) need the same
things before a kernel process exists: its runtime directory with a connection file whose
socket paths are the ones the kernel sees, the host-side connection info the server uses,
the directory handed to the session's uid, the kernel's pids cgroup, and the environment
session processes start with. :func:`prepare_kernel_folder` does that once for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.connect import write_connection_file

from .bubblewrap import SANDBOX_RUN_DIR, Sandbox

__all__ = ["CONNECTION_FILE", "KernelFolder", "chown_tree", "kernel_environment", "prepare_kernel_folder"]

logger = logging.getLogger(__name__)

CONNECTION_FILE = "kernel.json"
"""Name of the connection file in a kernel's runtime directory."""


@dataclass(frozen=True)
class KernelFolder:
    """A kernel's prepared runtime directory and what starting the kernel needs to know of it."""

    run_dir: Path
    """The host directory (connection file, sockets); removed with the kernel."""
    inner_run: str
    """Where the kernel sees ``run_dir`` (``/run/aca`` in a sandbox)."""
    inner_data: str
    """Where the kernel sees its data directory (``/mnt/data`` in a sandbox)."""
    connection_file: str
    """The connection file's path as the kernel sees it."""
    connection_info: dict[str, Any]
    """How the server reaches the kernel (socket paths on the host side)."""
    cgroup: Path | None
    """The kernel's pids cgroup, when the server could make one."""
    with_nproc: bool
    """Whether ``RLIMIT_NPROC`` must also limit processes (no cgroup, or a uid of its own)."""
    env: dict[str, str]
    """The environment the kernel starts with."""


async def prepare_kernel_folder(
    sandbox: Sandbox,
    *,
    data_dir: Path,
    run_dir: Path,
    uid: int | None,
    cgroup_prefix: str,
    mpl_cache: Path | None = None,
) -> KernelFolder:
    """Make ``run_dir`` ready for a kernel of ``data_dir`` (blocking parts run in a thread).

    ``uid`` is the session's own host uid when the sandbox switches to one; ``mpl_cache``
    is copied in as the kernel's private matplotlib cache; ``cgroup_prefix`` tells the
    launchers' cgroups apart in ``/sys/fs/cgroup``.
    """
    owner = uid if sandbox.drops_privileges else None
    inner_run, connection_info = await asyncio.to_thread(_write_folder, sandbox, run_dir, owner, mpl_cache)
    # Made on the event loop, after the last await: a cancelled start cannot leave a group
    # behind that nobody knows of (the caller removes it with the kernel).
    cgroup = None
    if sandbox.cgroup is not None and sandbox.limits.max_processes is not None:
        try:
            cgroup = sandbox.cgroup.create(
                f"{cgroup_prefix}{run_dir.name}{uuid.uuid4().hex[:4]}", sandbox.limits.max_processes
            )
        except OSError as exc:
            logger.warning("could not make a pids cgroup for a kernel: %s", exc)
    inner_data = sandbox.data_mount or str(data_dir)
    return KernelFolder(
        run_dir=run_dir,
        inner_run=inner_run,
        inner_data=inner_data,
        connection_file=os.path.join(inner_run, CONNECTION_FILE),
        connection_info=connection_info,
        cgroup=cgroup,
        with_nproc=cgroup is None or sandbox.drops_privileges,
        env=kernel_environment(data_dir=inner_data, run_dir=inner_run) | _egress_environment(sandbox),
    )


def _egress_environment(sandbox: Sandbox) -> dict[str, str]:
    """``HTTP(S)_PROXY`` of the pool's egress gate, if any (forked kernels take this env, not argv's)."""
    return dict(sandbox.egress_gate.env) if sandbox.sandboxed and sandbox.egress_gate is not None else {}


def _write_folder(
    sandbox: Sandbox, run_dir: Path, uid: int | None, mpl_cache: Path | None
) -> tuple[str, dict[str, Any]]:
    """Make ``run_dir`` with its connection file (and matplotlib cache); returns the kernel's
    view of the directory and the host-side connection info."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if mpl_cache is not None and mpl_cache.is_dir():
        # A private writable copy: matplotlib rebuilds its font list (seconds) when the
        # directory is not writable, and kernels must not share one writable copy.
        shutil.copytree(mpl_cache, run_dir / "mpl", dirs_exist_ok=True)
    inner_run = SANDBOX_RUN_DIR if sandbox.sandboxed else str(run_dir)
    # ipc (unix sockets in run_dir) works with and without a network namespace.
    _, info = write_connection_file(
        str(run_dir / CONNECTION_FILE),
        transport="ipc",
        ip=os.path.join(inner_run, "k"),
        key=secrets.token_hex(32).encode(),
    )
    if uid is not None:
        chown_tree(run_dir, uid)
    host_info = dict(info)
    host_info["ip"] = str(run_dir / "k")
    return inner_run, host_info


def kernel_environment(*, data_dir: str, run_dir: str) -> dict[str, str]:
    """The environment session processes start with: the server's secrets are not passed on."""
    env: dict[str, str] = {}
    for name in ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update({name: value for name, value in os.environ.items() if name.startswith("LC_")})
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "HOME": "/tmp",
            # The session's uid has no passwd entry; getpass and friends read these first.
            "USER": "sandbox",
            "LOGNAME": "sandbox",
            "TMPDIR": "/tmp",
            "IPYTHONDIR": "/tmp/.ipython",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": os.path.join(run_dir, "mpl"),
            "ACA_DATA_DIR": data_dir,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "JPY_SESSION_NAME": "",
            "TERM": "dumb",
        }
    )
    return env


def chown_tree(path: Path, uid: int) -> None:
    """Give ``path`` and everything under it to ``uid`` (symlinks themselves, never their targets)."""
    with contextlib.suppress(OSError):
        if os.lstat(path).st_uid != uid:
            os.lchown(path, uid, uid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                if os.lstat(full).st_uid != uid:
                    os.lchown(full, uid, uid)
