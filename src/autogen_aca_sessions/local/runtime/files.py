"""The files of a session, as the HTTP layer sees them: ``/mnt/data`` mapped onto ``data_dir``.

Every name and path a request carries is turned into a path relative to the session's data
directory, then resolved on disk and checked to stay inside it, so that ``..``, ``%2e%2e``,
absolute paths outside ``/mnt/data``, NUL bytes and symbolic links planted by session code
pointing elsewhere are all refused (400) before any disk access outside the directory happens.
Disk I/O runs in worker threads so that a large listing or upload never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import mimetypes
import os
import secrets
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar

from ..errors import WireError

__all__ = [
    "DATA_ROOT",
    "FileInfo",
    "close_upload_dir",
    "delete_entry",
    "file_info",
    "iter_handle_chunks",
    "list_directory",
    "open_download",
    "open_upload_dir",
    "relative_dir",
    "relative_name",
    "upload_basename",
    "write_upload",
]

DATA_ROOT = "/mnt/data"
"""Where session code sees its files."""

CHUNK_BYTES = 1024 * 1024
"""Disk reads and writes happen in pieces of this size, each in a worker thread."""

_UPLOAD_PREFIX = ".aca-upload-"

_T = TypeVar("_T")

"""Partial uploads are written under this prefix next to their final name, then renamed."""


@dataclass(frozen=True)
class FileInfo:
    """One file or directory under ``/mnt/data``."""

    name: str
    """The entry's own name (no directory part)."""
    directory: str
    """The parent directory relative to ``/mnt/data`` (``""`` at the top, ``"level1/level2"`` below)."""
    is_dir: bool
    """Whether the entry is a directory."""
    size: int
    """Size in bytes (0 for directories)."""
    modified_at: datetime
    """Last modification time, UTC."""
    content_type: str | None
    """A media type guessed from the name; ``None`` for directories."""

    @property
    def relative_path(self) -> str:
        """The path relative to ``/mnt/data``."""
        return f"{self.directory}/{self.name}" if self.directory else self.name


def _invalid(message: str, target: str) -> WireError:
    return WireError(400, "InvalidFilePath", message, target=target)


def _not_found(rel: PurePosixPath, what: str = "File") -> WireError:
    return WireError(404, f"{what}NotFound", f"{what} '{DATA_ROOT}/{rel}' does not exist.", target="name")


def _relative(value: str, target: str) -> PurePosixPath:
    if "\x00" in value:
        raise _invalid(f"'{target}' must not contain NUL characters.", target)
    if "\\" in value:
        raise _invalid(f"'{target}' must use '/' as separator, not '\\'.", target)
    if value.startswith("/"):
        if value == DATA_ROOT or value.startswith(DATA_ROOT + "/"):
            value = value[len(DATA_ROOT) :]
        else:
            raise _invalid(
                f"'{target}' must be relative to {DATA_ROOT} or start with {DATA_ROOT}/ (got {value!r}).",
                target,
            )
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _invalid(f"'{target}' must not contain '..' segments (got {value!r}).", target)
    return PurePosixPath(*parts)


def relative_dir(path: str | None) -> PurePosixPath:
    """The ``path`` query parameter as a directory relative to ``/mnt/data`` (``.`` for the top)."""
    if path is None:
        return PurePosixPath()
    return _relative(path, "path")


def relative_name(directory: PurePosixPath, name: str) -> PurePosixPath:
    """A file name from the URL, under ``directory``; the name may itself hold sub-directories."""
    rel = _relative(name, "name")
    if not rel.parts:
        raise _invalid("A file name is required.", "name")
    return directory / rel


def upload_basename(filename: str | None) -> str:
    """The name an uploaded part is stored under: the last component of its multipart filename.

    Clients send ``a.csv``, ``/mnt/data/a.csv`` or a local path; only the base name is kept and
    the file lands in the directory the ``path`` parameter names. The name is taken as sent
    (RFC 7578): ``a%20b.csv`` stays ``a%20b.csv``, as a real pool would store it, so a client
    that percent-encodes names sees here what it would see on Azure.
    """
    if not filename:
        raise _invalid("The multipart part 'file' must carry a filename.", "filename")
    if "\x00" in filename:
        raise _invalid("The filename must not contain NUL characters.", "filename")
    base = filename.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if base in ("", ".", ".."):
        raise _invalid(f"Invalid filename {filename!r}.", "filename")
    return base


def _inside(root: Path, candidate: Path) -> bool:
    return candidate == root or root in candidate.parents


def _resolve(data_dir: Path, rel: PurePosixPath, target: str) -> tuple[Path, Path]:
    """(real data root, real path of ``rel``); refuses a path whose real location is outside."""
    root = data_dir.resolve()
    real = (root / rel).resolve()
    if not _inside(root, real):
        raise _invalid(f"'{DATA_ROOT}/{rel}' resolves outside {DATA_ROOT}.", target)
    return root, real


def content_type_for(name: str) -> str:
    """The media type reported for a file (``text/markdown; charset=utf-8``)."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None or guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/json", "application/javascript"):
        return f"{guessed}; charset=utf-8"
    return guessed


def _info(root: Path, path: Path, st: os.stat_result) -> FileInfo:
    parent = path.parent.relative_to(root).as_posix()
    is_dir = stat.S_ISDIR(st.st_mode)
    return FileInfo(
        name=path.name,
        directory="" if parent == "." else parent,
        is_dir=is_dir,
        size=0 if is_dir else st.st_size,
        modified_at=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        content_type=None if is_dir else content_type_for(path.name),
    )


def _entry_info(root: Path, entry_path: Path) -> FileInfo | None:
    """Info on one directory entry as seen from inside; ``None`` for links leading outside."""
    try:
        if entry_path.is_symlink():
            real = entry_path.resolve()
            if not _inside(root, real):
                return None
        st = entry_path.stat()
    except OSError:
        return None  # vanished or dangling link: not listed
    return _info(root, entry_path, st)


def _os_error(exc: OSError) -> WireError:
    """A disk error caused by the session's own file state, as a client error, not a 500."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return WireError(404, "FileNotFound", f"A file or directory in the path does not exist ({reason}).")
    if isinstance(exc, (NotADirectoryError, FileExistsError, IsADirectoryError)):
        return WireError(400, "InvalidFilePath", f"A component of the path has the wrong type ({reason}).")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WireError(507, "InsufficientStorage", f"The session's disk is full ({reason}).")
    return WireError(409, "FileOperationFailed", f"The file operation failed: {reason}.")


async def _in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        raise _os_error(exc) from exc


def _list_sync(data_dir: Path, rel: PurePosixPath, recursive: bool) -> list[FileInfo]:
    root, real = _resolve(data_dir, rel, "path")
    if not real.is_dir():
        raise _not_found(rel, "Directory")
    out: list[FileInfo] = []
    pending = [real]
    while pending:
        current = pending.pop()
        try:
            names = sorted(os.listdir(current))
        except OSError:
            continue
        for name in names:
            if name.startswith(_UPLOAD_PREFIX):
                continue
            entry = current / name
            info = _entry_info(root, entry)
            if info is None:
                continue
            # The listed path is the logical one (under the link), not the link's target.
            out.append(info)
            if recursive and info.is_dir and not entry.is_symlink():
                pending.append(entry)
    out.sort(key=lambda f: (f.directory, f.name))
    return out


async def list_directory(data_dir: Path, rel: PurePosixPath, *, recursive: bool = False) -> list[FileInfo]:
    """The entries of ``/mnt/data/<rel>`` (every level below it when ``recursive``)."""
    return await _in_thread(_list_sync, data_dir, rel, recursive)


def _file_info_sync(data_dir: Path, rel: PurePosixPath) -> FileInfo:
    root, real = _resolve(data_dir, rel, "name")
    logical = root / rel
    try:
        st = real.stat()
    except FileNotFoundError:
        raise _not_found(rel) from None
    # Report the logical name, not a link target's.
    return _info(root, logical, st)


async def file_info(data_dir: Path, rel: PurePosixPath) -> FileInfo:
    """Metadata of ``/mnt/data/<rel>``; 404 when it does not exist."""
    return await _in_thread(_file_info_sync, data_dir, rel)


def _pinned_inside(fd: int, root: Path) -> bool:
    """Whether the open file ``fd`` really lives inside ``root``.

    Checked on the descriptor, not on a path, so a directory that session code swaps for a
    symbolic link between our path check and the open cannot lead outside.
    """
    try:
        actual = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return False
    return _inside(root, actual)


def _open_download_sync(data_dir: Path, rel: PurePosixPath) -> tuple[BinaryIO, int]:
    root, real = _resolve(data_dir, rel, "name")
    try:
        # O_NONBLOCK: a FIFO planted by session code must not hang the server on open.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _not_found(rel) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component became a link after the check
            raise _invalid(f"'{DATA_ROOT}/{rel}' resolves outside {DATA_ROOT}.", "name") from None
        raise
    try:
        if not _pinned_inside(fd, root):
            raise _invalid(f"'{DATA_ROOT}/{rel}' resolves outside {DATA_ROOT}.", "name")
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _invalid(f"'{DATA_ROOT}/{rel}' is a directory; only files can be downloaded.", "name")
        if not stat.S_ISREG(st.st_mode):
            raise _invalid(f"'{DATA_ROOT}/{rel}' is not a regular file.", "name")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


async def open_download(data_dir: Path, rel: PurePosixPath) -> tuple[BinaryIO, int]:
    """An open handle on a file to download and its size; 404 when missing, 400 for directories.

    The caller owns the handle; :func:`iter_handle_chunks` reads and closes it.
    """
    return await _in_thread(_open_download_sync, data_dir, rel)


async def iter_handle_chunks(handle: BinaryIO, size: int) -> AsyncGenerator[bytes, None]:
    """At most ``size`` bytes of ``handle`` in pieces, each read in a worker thread; closes it.

    Reading stops at the size announced in ``Content-Length`` even if session code appends meanwhile.
    """
    remaining = size
    try:
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _rmtree_at(parent_fd: int, name: str) -> None:
    """Remove the directory ``name`` in ``parent_fd`` and everything below, never following links."""
    for _, dirs, names, fd in os.fwalk(name, dir_fd=parent_fd, topdown=False, follow_symlinks=False):
        for entry in names:
            os.unlink(entry, dir_fd=fd)
        for entry in dirs:
            # fwalk lists links to directories among dirs; they are unlinked, not descended.
            if stat.S_ISLNK(os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode):
                os.unlink(entry, dir_fd=fd)
            else:
                os.rmdir(entry, dir_fd=fd)
    os.rmdir(name, dir_fd=parent_fd)


def _delete_sync(data_dir: Path, rel: PurePosixPath) -> None:
    if not rel.parts:
        raise _invalid(f"{DATA_ROOT} itself cannot be deleted.", "name")
    # The parent is opened and checked by descriptor, and the entry removed relative to it
    # without following links: deleting a link planted by session code removes only the link,
    # and a parent swapped for a link cannot redirect the delete.
    root, parent = _resolve(data_dir, rel.parent, "name")
    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _not_found(rel) from None
    try:
        if not _pinned_inside(parent_fd, root):
            raise _invalid(f"'{DATA_ROOT}/{rel}' resolves outside {DATA_ROOT}.", "name")
        try:
            st = os.stat(rel.name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise _not_found(rel) from None
        if stat.S_ISDIR(st.st_mode):
            _rmtree_at(parent_fd, rel.name)
        else:
            os.unlink(rel.name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


async def delete_entry(data_dir: Path, rel: PurePosixPath) -> None:
    """Delete ``/mnt/data/<rel>`` (a directory with everything in it); 404 when missing."""
    await _in_thread(_delete_sync, data_dir, rel)


@dataclass
class UploadDir:
    """A directory under ``/mnt/data`` held open for uploads (see :func:`open_upload_dir`)."""

    fd: int
    """Descriptor of the directory: files are created relative to it, never through a path."""
    rel_dir: PurePosixPath
    """The directory relative to ``/mnt/data``."""
    uid: int
    """Owner the uploaded files are given (the owner of ``/mnt/data``, i.e. the session's user)."""
    gid: int
    """Group the uploaded files are given."""


def _open_upload_dir_sync(data_dir: Path, rel_dir: PurePosixPath) -> UploadDir:
    root, real = _resolve(data_dir, rel_dir, "path")
    if real.exists() and not real.is_dir():
        raise _invalid(f"'{DATA_ROOT}/{rel_dir}' exists and is not a directory.", "path")
    owner = os.stat(root)
    missing = [p for p in (real, *real.parents) if _inside(root, p) and not p.exists()]
    real.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        with contextlib.suppress(OSError):
            os.chown(created, owner.st_uid, owner.st_gid, follow_symlinks=False)
    fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if not _pinned_inside(fd, root):
        os.close(fd)
        raise _invalid(f"'{DATA_ROOT}/{rel_dir}' resolves outside {DATA_ROOT}.", "path")
    return UploadDir(fd=fd, rel_dir=rel_dir, uid=owner.st_uid, gid=owner.st_gid)


async def open_upload_dir(data_dir: Path, rel_dir: PurePosixPath) -> UploadDir:
    """Create (when missing) and open the directory an upload goes to.

    Release it with :func:`close_upload_dir`.
    """
    return await _in_thread(_open_upload_dir_sync, data_dir, rel_dir)


async def close_upload_dir(target: UploadDir) -> None:
    """Release the directory descriptor."""
    with contextlib.suppress(OSError):
        os.close(target.fd)


class UploadTooLarge(WireError):
    """An uploaded file went over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "PayloadTooLarge",
            f"The uploaded file is larger than the limit of {limit} bytes.",
            target="file",
        )


async def write_upload(
    target: UploadDir,
    basename: str,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
) -> int:
    """Stream ``chunks`` into ``basename`` in ``target``; returns the size written.

    The data goes to a hidden temporary name first and is renamed into place at the end, so a
    reader never sees half a file and a link at the final name is replaced, not followed. Both
    happen relative to the directory descriptor, so swapping the directory for a link cannot
    redirect the write. The partial file is removed on any failure.
    """
    try:
        return await _write_upload(target, basename, chunks, max_bytes=max_bytes)
    except OSError as exc:
        raise _os_error(exc) from exc


def _create_temp(target: UploadDir, name: str) -> int:
    fd = os.open(
        name,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o644,
        dir_fd=target.fd,
    )
    with contextlib.suppress(OSError):
        os.fchown(fd, target.uid, target.gid)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _is_real_dir_at(target: UploadDir, name: str) -> bool:
    try:
        st = os.stat(name, dir_fd=target.fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode)


def _discard_temp(fd: int, target: UploadDir, name: str) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=target.fd)


async def _write_upload(
    target: UploadDir,
    basename: str,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
) -> int:
    if await asyncio.to_thread(_is_real_dir_at, target, basename):
        raise _invalid(f"'{basename}' is an existing directory.", "filename")
    temp = f"{_UPLOAD_PREFIX}{secrets.token_hex(8)}"
    fd = await asyncio.to_thread(_create_temp, target, temp)
    written = 0
    closed = False
    try:
        buffer: list[bytes] = []
        buffered = 0
        async for chunk in chunks:
            written += len(chunk)
            if written > max_bytes:
                raise UploadTooLarge(max_bytes)
            buffer.append(chunk)
            buffered += len(chunk)
            if buffered >= CHUNK_BYTES:
                await asyncio.to_thread(_write_all, fd, b"".join(buffer))
                buffer, buffered = [], 0
        if buffer:
            await asyncio.to_thread(_write_all, fd, b"".join(buffer))
        closed = True
        await asyncio.to_thread(os.close, fd)
        await asyncio.to_thread(os.replace, temp, basename, src_dir_fd=target.fd, dst_dir_fd=target.fd)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(_discard_temp, -1 if closed else fd, target, temp))
        raise
    return written
