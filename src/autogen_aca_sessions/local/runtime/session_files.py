"""The files of a local session: :class:`~.protocol.SessionFiles` on the session's data directory.

Every operation goes through :mod:`.files`, which keeps each path inside the directory (no ``..``,
no symbolic link out) and does its disk I/O in worker threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

from . import files
from .files import FileInfo
from .protocol import FileContent, Upload

__all__ = ["DirectoryFiles"]


class DirectoryFiles:
    """The files of one session, kept in a host directory that session code sees as ``/mnt/data``."""

    def __init__(self, data_dir: Path) -> None:
        self._root = data_dir

    async def list_dir(self, directory: PurePosixPath, *, recursive: bool = False) -> list[FileInfo]:
        """The entries of ``directory`` (and below it when ``recursive``)."""
        return await files.list_directory(self._root, directory, recursive=recursive)

    async def info(self, path: PurePosixPath) -> FileInfo:
        """What ``path`` is (404 when it does not exist)."""
        return await files.file_info(self._root, path)

    async def read(self, path: PurePosixPath) -> FileContent:
        """Open the file at ``path``; its chunks close the handle when done or closed."""
        handle, size = await files.open_download(self._root, path)
        return FileContent(size=size, chunks=files.iter_handle_chunks(handle, size))

    async def delete(self, path: PurePosixPath) -> None:
        """Remove the file or directory (with its contents) at ``path``."""
        await files.delete_entry(self._root, path)

    async def write(
        self, directory: PurePosixPath, uploads: AsyncIterator[Upload], *, max_bytes: int
    ) -> list[FileInfo]:
        """Store every upload in ``directory``; the limit applies to their sum."""
        stored: list[PurePosixPath] = []
        target: files.UploadDir | None = None
        remaining = max_bytes
        try:
            async for upload in uploads:
                if target is None:  # made only once a file arrives: an empty form changes nothing
                    target = await files.open_upload_dir(self._root, directory)
                remaining -= await files.write_upload(target, upload.name, upload.chunks, max_bytes=remaining)
                stored.append(directory / upload.name)
        finally:
            if target is not None:
                await files.close_upload_dir(target)
        return [await files.file_info(self._root, rel) for rel in stored]
