"""What the two :class:`~._backend.CodeBackend` classes share: paths, locks, local file transfers.

:class:`~._sessions.DynamicSessions` and :class:`~._sandboxes.Sandboxes` differ in how they find,
prepare and run a conversation's workspace; :class:`WorkspaceBackend` holds the logic that is the
same for both: the injected functions' module, one lock per workspace, the closed check, the
cached package list, and the copies between the configured local directories and the workspace.
The path checks of both (a local path inside its allowed directory, a workspace path inside the
working directory) are here too.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from autogen_aca_sessions.agent_framework._config import DynamicSessionsConfig, SandboxesConfig
from autogen_aca_sessions.agent_framework._functions import (
    FunctionsModule,
    InjectedFunction,
    build_functions_module,
)
from autogen_aca_sessions.client import SessionFile, SessionsError
from autogen_aca_sessions.client.closing import AsyncClosing

if TYPE_CHECKING:
    from agent_framework import AgentSession

__all__ = ["PathNotAllowedError", "WorkspaceBackend", "resolve_inside", "workspace_parts"]


class PathNotAllowedError(ValueError):
    """A local or session path points outside the directory it must stay in."""


def resolve_inside(root: str | Path, relative: str) -> Path:
    """``root / relative`` resolved, refused when it leaves ``root`` (``..``, absolute paths, links)."""
    if not isinstance(relative, str) or not relative.strip():
        raise ValueError("path must be a non-empty string")
    base = Path(root).expanduser().resolve()
    candidate = (base / relative).resolve()
    if candidate != base and base not in candidate.parents:
        raise PathNotAllowedError(f"{relative!r} is outside the allowed directory")
    if candidate == base:
        raise PathNotAllowedError(f"{relative!r} names the allowed directory itself, not a file in it")
    return candidate


def workspace_parts(name: str, work_dir: str, where: str) -> list[str]:
    """The parts of ``name`` relative to ``work_dir`` (a ``work_dir/`` prefix allowed); refuses
    ``..``, other absolute paths and backslashes, saying the path is not inside ``where``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("file name must be a non-empty string")
    text = name.strip()
    prefix = work_dir.rstrip("/") + "/"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text:
        raise PathNotAllowedError(f"{name!r} is not a path inside {where}")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise ValueError(f"{name!r} names no file")
    return parts


class WorkspaceBackend(AsyncClosing, ABC):
    """The part of a :class:`~._backend.CodeBackend` that does not depend on the service.

    Args:
        functions: The injected functions, built into one module here (None when there are none).
    """

    def __init__(self, functions: Sequence[InjectedFunction]) -> None:
        self._functions: FunctionsModule | None = build_functions_module(functions) if functions else None
        self._locks: dict[str, asyncio.Lock] = {}
        self._packages: list[str] | None = None
        self._closed = False

    @property
    @abstractmethod
    def config(self) -> DynamicSessionsConfig | SandboxesConfig:
        """The configuration."""

    @property
    def functions(self) -> FunctionsModule | None:
        """The module built from the injected functions, if any."""
        return self._functions

    def _lock(self, key: str) -> asyncio.Lock:
        """The lock of one workspace (or of one conversation's creating it): calls wait in turn."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _check_open(self) -> None:
        if self._closed:
            raise SessionsError(f"this {type(self).__name__} is closed")

    # ------------------------------------------------------------------ per backend
    @abstractmethod
    async def upload(self, session: AgentSession | None, name: str, data: bytes) -> SessionFile:
        """Put ``data`` into the workspace's working directory as ``name``."""

    @abstractmethod
    async def download(self, session: AgentSession | None, name: str) -> bytes:
        """The content of ``name`` in the workspace's working directory."""

    @abstractmethod
    async def _find_packages(self, session: AgentSession | None) -> list[str]:
        """The names of the installed packages, as the service tells them (not cached)."""

    # ------------------------------------------------------------------ shared
    async def packages(self, session: AgentSession | None = None) -> list[str]:
        """Names of the packages installed where the code runs: asked once, then cached (every
        workspace of this object starts from the same image or pool)."""
        if self._packages is None:
            names = await self._find_packages(session)
            self._packages = sorted(set(names), key=str.lower)
        return list(self._packages)

    async def upload_from_allowed_dir(self, session: AgentSession | None, local_path: str) -> SessionFile:
        """Upload a file of the configured ``upload_dir`` (``local_path`` is relative to it)."""
        root = self.config.upload_dir
        if root is None:
            raise PathNotAllowedError("uploads are disabled: no upload_dir is configured")
        source = resolve_inside(root, local_path)
        if not await asyncio.to_thread(source.is_file):
            raise FileNotFoundError(f"{local_path!r} is not a file in the upload directory")
        data = await asyncio.to_thread(source.read_bytes)
        return await self.upload(session, source.name, data)

    async def download_to_allowed_dir(
        self, session: AgentSession | None, name: str, local_name: str | None = None
    ) -> Path:
        """Download ``name`` from the workspace into the configured ``download_dir``."""
        root = self.config.download_dir
        if root is None:
            raise PathNotAllowedError("downloads are disabled: no download_dir is configured")
        target = resolve_inside(root, local_name or PurePosixPath(name).name)
        data = await self.download(session, name)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(target.write_bytes, data)
        return target
