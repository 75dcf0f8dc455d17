"""A sandbox's own disk: a host directory holding its writable directories.

Layout of ``<disk>/`` (each shown read-write inside the sandbox, owned by its uid)::

    root/   → /root       (HOME; the SDK quickstart writes /root/a.txt)
    home/   → /home
    data/   → /mnt/data   (as in dynamic sessions)

Everything else is the host's file system, read-only, with the private directories hidden;
``/tmp`` is an empty tmpfs of ``TMP_BYTES`` per run (gone after a Disk-mode stop, as after a
reboot). Snapshots and disk images are copies of this directory (``cp --reflink=auto``: a
reflink where the file system allows it, a plain copy elsewhere).

Quota: the host file system has no per-directory quota that works without root-only set-up,
so usage is measured (allocated blocks, in a worker thread) and enforced: files are capped at
the quota by ``RLIMIT_FSIZE``, writes through the files API are refused past it, and the
runtime's watcher kills a running sandbox's commands when usage goes over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
from pathlib import Path

from .errors import SandboxError

__all__ = ["MOUNTS", "TMP_BYTES", "copy_disk", "disk_usage", "layout_disk", "own_tree", "remove_tree"]

MOUNTS: dict[str, str] = {"/root": "root", "/home": "home", "/mnt/data": "data"}
"""Sandbox path → directory of the disk shown there (read-write)."""
TMP_BYTES = 256 * 1024 * 1024
"""Size of each run's ``/tmp`` (a tmpfs: memory, charged to the sandbox's memory cgroup)."""


def layout_disk(disk: Path, uid: int | None) -> None:
    """Make the writable directories that are missing, owned by ``uid`` (blocking)."""
    disk.mkdir(parents=True, exist_ok=True)
    for name in MOUNTS.values():
        path = disk / name
        path.mkdir(exist_ok=True)
        if uid is not None:
            os.chown(path, uid, uid)
        os.chmod(path, 0o755)


def disk_usage(disk: Path) -> int:
    """Bytes allocated under ``disk`` (blocks, not apparent sizes: sparse files count as stored)."""
    total = 0
    pending = [str(disk)]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError), os.scandir(current) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        pending.append(entry.path)
    return total


def own_tree(disk: Path, uid: int) -> None:
    """Give every file of ``disk`` to ``uid`` (a disk copied from another sandbox's); blocking."""
    for dirpath, dirnames, filenames in os.walk(disk):
        for name in (*dirnames, *filenames):
            with contextlib.suppress(OSError):
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
        with contextlib.suppress(OSError):
            os.chown(dirpath, uid, uid, follow_symlinks=False)


async def copy_disk(source: Path, target: Path) -> None:
    """Copy a disk directory (reflinks where possible), keeping modes, times and links.

    ``target`` must not exist. Runs ``cp`` (coreutils does reflinks and sparse files right).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "cp", "-a", "--reflink=auto", "--", str(source), str(target),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        await asyncio.to_thread(shutil.rmtree, target, True)
        raise SandboxError(f"copying the sandbox's disk failed: {err.decode(errors='replace').strip()}")


def remove_tree(path: Path) -> None:
    """Delete a directory tree, whatever its modes (blocking, never raises)."""

    def retry_writable(func: object, failed: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            if callable(func):
                func(failed)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=retry_writable)
