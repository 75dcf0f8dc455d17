"""The runtime protocol: the one interface the frontends (data plane, MCP) use to reach sessions.

The frontends speak HTTP and JSON-RPC; a runtime holds sessions that run code and keep files. This
module is the seam between them, and the interface a second backend implements (``docs/design.md``
"The runtime protocol" maps a Kubernetes backend on kubernetes-sigs/agent-sandbox onto it):

- :class:`SessionManagerLike`: the sessions of one pool: get, create, list, delete, and what the
  pool runs (its :class:`~.metadata.PoolRuntimeInfo`).
- :class:`SessionLike`: one session: its identity and timestamps as the wire shows them, its idle
  timer, code and shell runs, and its files (:class:`SessionFiles`).

Nothing here names a process, a host path, a uid or a kernel: paths are the ones session code sees
below ``/mnt/data``, files move as streams of bytes, and results are the runtime's own typed
outcomes (``outcome.py``). The module imports neither aiohttp nor a frontend.

Reads that are synchronous (:meth:`SessionManagerLike.get`, :meth:`SessionManagerLike.sessions`)
answer from the runtime's own view of its sessions (a dictionary locally, a watch cache in a
cluster); everything that may wait on the sessions themselves is ``async``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Protocol

from ..config import Isolation, PoolConfig
from .files import FileInfo
from .metadata import PoolRuntimeInfo
from .outcome import CodeOutput, ShellOutput

__all__ = ["FileContent", "SessionFiles", "SessionLike", "SessionManagerLike", "Upload"]


@dataclass(frozen=True)
class Upload:
    """One file of an upload, as it arrives."""

    name: str
    """Its base name (no directory part; the caller checked it)."""
    chunks: AsyncIterator[bytes]
    """Its bytes, read as they arrive (never held whole)."""


@dataclass(frozen=True)
class FileContent:
    """A file being read: its size first (for ``Content-Length``), then its bytes."""

    size: int
    """The number of bytes :attr:`chunks` yields."""
    chunks: AsyncGenerator[bytes, None]
    """The bytes; ``aclose()`` it when not read to the end, to release what backs it."""


class SessionFiles(Protocol):
    """The files of one session. Paths are relative to ``/mnt/data``, already checked not to leave
    it (``files.relative_dir`` / ``files.relative_name``); refusals are ``WireError`` (400, 404,
    409, 413) with the status the caller gets."""

    async def list_dir(self, directory: PurePosixPath, *, recursive: bool = False) -> list[FileInfo]:
        """The entries of ``directory`` (and below it when ``recursive``)."""
        ...

    async def info(self, path: PurePosixPath) -> FileInfo:
        """What ``path`` is (404 when it does not exist)."""
        ...

    async def read(self, path: PurePosixPath) -> FileContent:
        """Open the file at ``path`` for reading."""
        ...

    async def delete(self, path: PurePosixPath) -> None:
        """Remove the file or directory (with its contents) at ``path``."""
        ...

    async def write(
        self, directory: PurePosixPath, uploads: AsyncIterator[Upload], *, max_bytes: int
    ) -> list[FileInfo]:
        """Store every upload in ``directory`` (created when missing), each complete or not at
        all; 413 once their sum passes ``max_bytes``. Returns what was stored, in order."""
        ...


class SessionLike(Protocol):
    """One session of a pool, as the frontends use it."""

    @property
    def identifier(self) -> str:
        """The identifier the caller chose."""
        ...

    @property
    def guid(self) -> str:
        """Names this incarnation of the identifier (``x-ms-session-guid``); new when it is
        created anew, so a client can tell that its state went."""
        ...

    @property
    def created_at(self) -> datetime:
        """When the session was created (UTC)."""
        ...

    @property
    def last_accessed_at(self) -> datetime:
        """When a request last named it (UTC)."""
        ...

    @property
    def expire_at(self) -> datetime:
        """When the runtime deletes it unless it is touched again."""
        ...

    @property
    def etag(self) -> str:
        """An opaque tag that changes whenever the session is touched."""
        ...

    @property
    def files(self) -> SessionFiles:
        """Its files under ``/mnt/data``."""
        ...

    def touch(self) -> None:
        """Reset its idle timer (every request that names the session does)."""
        ...

    async def execute(self, code: str, *, timeout: float, max_output_chars: int) -> CodeOutput:
        """Run Python ``code`` in the session's interpreter, state kept between calls."""
        ...

    async def run_shell(self, command: str, *, timeout: float, max_output_chars: int) -> ShellOutput:
        """Run ``bash -c command`` in the session with ``/mnt/data`` as working directory."""
        ...


class SessionManagerLike(Protocol):
    """The sessions of one pool."""

    @property
    def config(self) -> PoolConfig:
        """The pool's configuration in force (it may be replaced while the pool runs)."""
        ...

    @property
    def isolation(self) -> Isolation:
        """The confinement in force around session code."""
        ...

    async def get_or_create(self, identifier: str) -> SessionLike:
        """The session named ``identifier``, created when new (``SessionLimitReached`` when the pool
        holds its maximum; ``ResourcesExhaustedError`` when the runtime ran out of something)."""
        ...

    def get(self, identifier: str) -> SessionLike | None:
        """The session named ``identifier`` if it exists; never creates one nor touches it."""
        ...

    async def delete(self, identifier: str) -> bool:
        """Delete the session now; False when there was none."""
        ...

    def sessions(self) -> Sequence[SessionLike]:
        """Every session of the pool."""
        ...

    async def runtime_info(self) -> PoolRuntimeInfo:
        """The runtimes, packages and kernel sessions of this pool get (``GET /metadata``)."""
        ...
