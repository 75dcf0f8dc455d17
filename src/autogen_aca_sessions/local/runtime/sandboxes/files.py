"""A sandbox's files API on its disk, through the session runtime's escape-safe file helpers.

Only the sandbox's writable directories (``/root``, ``/home``, ``/mnt/data``, see ``disk.py``)
are reachable: the rest of what a sandbox sees is the host's file system, which the server
(running as root) must not read or write on a sandbox's behalf. A path is split into its
mount and a path relative to that mount's disk directory; ``runtime/files.py`` then refuses
``..``, NUL bytes and symbolic links leading out of the directory, by descriptor, before any
disk access outside it. Its errors (the data plane's ``WireError``) are turned into this
runtime's errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from ...frontends.dataplane.wire.errors import WireError
from .. import files as session_files
from .disk import MOUNTS
from .errors import (
    ConflictingOperation,
    DiskQuotaExceeded,
    FileNotFound,
    InvalidRequest,
    PathOutsideSandbox,
    SandboxError,
)
from .models import FileEntry

__all__ = ["SandboxFiles"]

_HOME = "/root"


class _Located:
    """A sandbox path resolved to a mount."""

    def __init__(self, path: str, mountpoint: str, root: Path, rel: PurePosixPath) -> None:
        self.path = path
        self.mountpoint = mountpoint
        self.root = root
        self.rel = rel


def _translate(exc: WireError, path: str) -> SandboxError:
    # The helpers word their messages for a session's /mnt/data; the sandbox's path is said here.
    if exc.status == 404:
        return FileNotFound(path)
    if exc.status == 400:
        if "resolves outside" in exc.message:
            return PathOutsideSandbox(
                f"{path!r} leads out of the sandbox's writable directories (a link to elsewhere).",
                target="path",
            )
        if "directory" in exc.message:
            return InvalidRequest(f"{path!r} is a directory, or a path component is not one.", target="path")
        return PathOutsideSandbox(f"{path!r} is not a valid file path.", target="path")
    if exc.status == 507:
        return DiskQuotaExceeded(f"The sandbox's disk is full ({exc.message}).")
    if exc.status == 413:
        return DiskQuotaExceeded(f"{path!r} would take the sandbox over its disk quota.")
    return ConflictingOperation(f"{path!r}: {exc.message}")


class SandboxFiles:
    """The files of one sandbox's disk, as paths inside the sandbox."""

    def __init__(self, disk: Path) -> None:
        self.disk = disk
        """The sandbox's disk directory on the host."""

    def locate(self, path: str) -> _Located:
        """Split ``path`` into mount and relative path; :class:`PathOutsideSandbox` if it has no mount."""
        if not isinstance(path, str) or not path:
            raise InvalidRequest("A path is required.", target="path")
        if "\x00" in path:
            raise PathOutsideSandbox("The path must not contain NUL characters.", target="path")
        if "\\" in path:
            raise PathOutsideSandbox("The path must use '/' as separator.", target="path")
        absolute = path if path.startswith("/") else f"{_HOME}/{path}"
        parts = [p for p in absolute.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise PathOutsideSandbox(
                f"The path must not contain '..' segments (got {path!r}).", target="path"
            )
        normal = "/" + "/".join(parts)
        for mountpoint, sub in MOUNTS.items():
            if normal == mountpoint or normal.startswith(mountpoint + "/"):
                rel = (
                    PurePosixPath(*normal[len(mountpoint) :].split("/")[1:]) if normal != mountpoint else None
                )
                return _Located(normal, mountpoint, self.disk / sub, rel or PurePosixPath())
        writable = ", ".join(MOUNTS)
        raise PathOutsideSandbox(
            f"{path!r} is outside the sandbox's writable directories ({writable}); the rest of its "
            "file system is the read-only host image, which the files API does not serve.",
            target="path",
        )

    async def read(self, path: str) -> bytes:
        """The whole content of a file."""
        at = self.locate(path)
        try:
            handle, size = await session_files.open_download(at.root, at.rel)
        except WireError as exc:
            raise _translate(exc, at.path) from None
        return b"".join([chunk async for chunk in session_files.iter_handle_chunks(handle, size)])

    async def open_read(self, path: str) -> tuple[AsyncIterator[bytes], int]:
        """The content of a file in pieces (read in worker threads), and its size."""
        at = self.locate(path)
        try:
            handle, size = await session_files.open_download(at.root, at.rel)
        except WireError as exc:
            raise _translate(exc, at.path) from None
        return session_files.iter_handle_chunks(handle, size), size

    async def write(
        self,
        path: str,
        chunks: AsyncIterator[bytes],
        *,
        create_dirs: bool,
        mode: int | None,
        max_bytes: int,
    ) -> int:
        """Write a file (replacing it whole, atomically); returns the bytes written."""
        at = self.locate(path)
        if not at.rel.parts:
            raise InvalidRequest(f"{at.path!r} is a directory.", target="path")
        if mode is not None and not 0 <= mode <= 0o7777:
            raise InvalidRequest(f"mode {mode:o} is not a permission mode.", target="mode")
        if not create_dirs:
            await self._require_dir(at.root, at.rel.parent, str(PurePosixPath(at.path).parent))
        try:
            target = await session_files.open_upload_dir(at.root, at.rel.parent)
            try:
                written = await session_files.write_upload(target, at.rel.name, chunks, max_bytes=max_bytes)
                if mode is not None:
                    await asyncio.to_thread(_chmod_at, target.fd, at.rel.name, mode)
            finally:
                await session_files.close_upload_dir(target)
        except WireError as exc:
            raise _translate(exc, at.path) from None
        return written

    async def _require_dir(self, root: Path, rel: PurePosixPath, shown: str) -> None:
        try:
            info = await session_files.file_info(root, rel)
        except WireError as exc:
            raise _translate(exc, shown) from None
        if not info.is_dir:
            raise InvalidRequest(f"{shown!r} is not a directory.", target="path")

    async def mkdir(self, path: str, *, parents: bool = True, mode: int | None = None) -> FileEntry:
        """Make a directory (and its parents when ``parents``); an existing directory is fine."""
        at = self.locate(path)
        if not parents and at.rel.parts:
            await self._require_dir(at.root, at.rel.parent, str(PurePosixPath(at.path).parent))
        try:
            target = await session_files.open_upload_dir(at.root, at.rel)
            try:
                if mode is not None:
                    await asyncio.to_thread(os.fchmod, target.fd, mode & 0o7777)
            finally:
                await session_files.close_upload_dir(target)
        except WireError as exc:
            raise _translate(exc, at.path) from None
        return await self.stat(at.path)

    async def delete(self, path: str, *, recursive: bool) -> None:
        """Delete a file, a link (not its target) or a directory (non-empty only when ``recursive``)."""
        at = self.locate(path)
        if not at.rel.parts:
            raise InvalidRequest(f"{at.mountpoint} itself cannot be deleted.", target="path")
        if not recursive and await asyncio.to_thread(_is_full_dir, at.root, at.rel, at.path):
            raise ConflictingOperation(f"{at.path!r} is a non-empty directory; pass recursive=true.")
        try:
            await session_files.delete_entry(at.root, at.rel)
        except WireError as exc:
            raise _translate(exc, at.path) from None

    async def stat(self, path: str) -> FileEntry:
        """Facts about one file or directory."""
        at = self.locate(path)
        try:
            await session_files.file_info(at.root, at.rel)  # the escape check
        except WireError as exc:
            raise _translate(exc, at.path) from None
        entry = await asyncio.to_thread(_entry, at.root, at.rel, at.path)
        if entry is None:
            raise FileNotFound(at.path)
        return entry

    async def list_dir(self, path: str) -> list[FileEntry]:
        """The entries of a directory (links leading out of the sandbox's directories are left out)."""
        at = self.locate(path)
        try:
            infos = await session_files.list_directory(at.root, at.rel)
        except WireError as exc:
            raise _translate(exc, at.path) from None
        base = PurePosixPath(at.path)
        out: list[FileEntry] = []
        for info in infos:
            rel = at.rel / info.name
            entry = await asyncio.to_thread(_entry, at.root, rel, str(base / info.name))
            if entry is not None:
                out.append(entry)
        return out


def _is_full_dir(root: Path, rel: PurePosixPath, shown: str) -> bool:
    """Whether ``rel`` is a real (not linked) directory with entries; its parent must stay inside."""
    parent = (root / rel.parent).resolve()
    real_root = root.resolve()
    if parent != real_root and real_root not in parent.parents:
        raise PathOutsideSandbox(f"{shown!r} leads out of the sandbox's writable directories.", target="path")
    try:
        st = os.lstat(parent / rel.name)
    except FileNotFoundError:
        raise FileNotFound(shown) from None
    return stat.S_ISDIR(st.st_mode) and bool(os.listdir(parent / rel.name))


def _chmod_at(dir_fd: int, name: str, mode: int) -> None:
    # By descriptor, never following a link someone put at the name since the write.
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _entry(root: Path, rel: PurePosixPath, shown: str) -> FileEntry | None:
    path = root / rel
    try:
        lst = os.lstat(path)
    except OSError:
        return None
    link_target: str | None = None
    st = lst
    if stat.S_ISLNK(lst.st_mode):
        with contextlib.suppress(OSError):
            link_target = os.readlink(path)
        # Facts of the target only when it stays inside (checked by the caller's helper).
        with contextlib.suppress(OSError):
            real = path.resolve()
            if real == root.resolve() or root.resolve() in real.parents:
                st = os.stat(path)
    is_dir = stat.S_ISDIR(st.st_mode)
    return FileEntry(
        name=PurePosixPath(shown).name,
        path=shown,
        size=0 if is_dir else st.st_size,
        is_dir=is_dir,
        is_symlink=link_target is not None,
        symlink_target=link_target,
        mode=stat.S_IMODE(st.st_mode),
        modified_at=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
    )
