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
import mimetypes
import os
import re
import secrets
import shutil
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote

from .wire.errors import WireError

__all__ = [
    "DATA_ROOT",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "FileInfo",
    "delete_entry",
    "file_info",
    "iter_file_chunks",
    "list_directory",
    "prepare_upload_dir",
    "relative_dir",
    "relative_name",
    "resolve_download",
    "upload_basename",
    "write_upload",
]

DATA_ROOT = "/mnt/data"
"""Where session code sees its files."""

DEFAULT_MAX_UPLOAD_BYTES = 128 * 1024 * 1024
"""The service's upload limit; larger files are refused with 413."""

CHUNK_BYTES = 1024 * 1024
"""Disk reads and writes happen in pieces of this size, each in a worker thread."""

_UPLOAD_PREFIX = ".aca-upload-"

_PERCENT_ENCODED = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+")
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
    the file lands in the directory the ``path`` parameter names.
    """
    if not filename:
        raise _invalid("The multipart part 'file' must carry a filename.", "filename")
    if _PERCENT_ENCODED.fullmatch(filename) and "%" in filename:
        # aiohttp clients percent-encode the filename parameter (a/b.txt -> a%2Fb.txt); a name
        # made only of URL-safe characters and %XX escapes is taken to be encoded that way.
        filename = unquote(filename)
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
    return await asyncio.to_thread(_list_sync, data_dir, rel, recursive)


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
    return await asyncio.to_thread(_file_info_sync, data_dir, rel)


def _resolve_download_sync(data_dir: Path, rel: PurePosixPath) -> tuple[Path, int]:
    _, real = _resolve(data_dir, rel, "name")
    try:
        st = real.stat()
    except FileNotFoundError:
        raise _not_found(rel) from None
    if stat.S_ISDIR(st.st_mode):
        raise _invalid(f"'{DATA_ROOT}/{rel}' is a directory; only files can be downloaded.", "name")
    if not stat.S_ISREG(st.st_mode):
        raise _invalid(f"'{DATA_ROOT}/{rel}' is not a regular file.", "name")
    return real, st.st_size


async def resolve_download(data_dir: Path, rel: PurePosixPath) -> tuple[Path, int]:
    """The real path and size of a file to download; 404 when missing, 400 for directories."""
    return await asyncio.to_thread(_resolve_download_sync, data_dir, rel)


async def iter_file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The bytes of ``path`` in pieces, each read in a worker thread."""
    handle: BinaryIO = await asyncio.to_thread(open, path, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, CHUNK_BYTES)
            if not chunk:
                return
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _delete_sync(data_dir: Path, rel: PurePosixPath) -> None:
    if not rel.parts:
        raise _invalid(f"{DATA_ROOT} itself cannot be deleted.", "name")
    # The parent must be inside; the entry itself is removed without following a link, so
    # deleting a link that session code pointed elsewhere removes only the link.
    _, parent = _resolve(data_dir, rel.parent, "name")
    entry = parent / rel.name
    if entry.is_symlink():
        entry.unlink()
        return
    if not entry.exists():
        raise _not_found(rel)
    if entry.is_dir():
        shutil.rmtree(entry)
    else:
        entry.unlink()


async def delete_entry(data_dir: Path, rel: PurePosixPath) -> None:
    """Delete ``/mnt/data/<rel>`` (a directory with everything in it); 404 when missing."""
    await asyncio.to_thread(_delete_sync, data_dir, rel)


def _prepare_upload_dir_sync(data_dir: Path, rel_dir: PurePosixPath) -> Path:
    _, real = _resolve(data_dir, rel_dir, "path")
    if real.exists() and not real.is_dir():
        raise _invalid(f"'{DATA_ROOT}/{rel_dir}' exists and is not a directory.", "path")
    real.mkdir(parents=True, exist_ok=True)
    # Re-check after creation: a link swapped in meanwhile must not lead the upload outside.
    _resolve(data_dir, rel_dir, "path")
    return real


async def prepare_upload_dir(data_dir: Path, rel_dir: PurePosixPath) -> Path:
    """The real directory an upload goes to, created when missing."""
    return await asyncio.to_thread(_prepare_upload_dir_sync, data_dir, rel_dir)


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
    target_dir: Path,
    basename: str,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
) -> Path:
    """Stream ``chunks`` into ``target_dir/basename``; the partial file is removed on any failure.

    The data goes to a hidden temporary name first and is renamed into place at the end, so a
    reader never sees half a file and a link at the final name is replaced, not followed.
    """
    final = target_dir / basename
    if await asyncio.to_thread(_is_real_dir, final):
        raise _invalid(f"'{basename}' is an existing directory.", "filename")
    temp = target_dir / f"{_UPLOAD_PREFIX}{secrets.token_hex(8)}"
    handle: BinaryIO = await asyncio.to_thread(open, temp, "xb")
    written = 0
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
                await asyncio.to_thread(handle.write, b"".join(buffer))
                buffer, buffered = [], 0
        if buffer:
            await asyncio.to_thread(handle.write, b"".join(buffer))
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            await asyncio.shield(asyncio.to_thread(_discard, handle, temp))
        raise
    return final


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _discard(handle: Any, temp: Path) -> None:
    with contextlib.suppress(OSError):
        handle.close()
    temp.unlink(missing_ok=True)
