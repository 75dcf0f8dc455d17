"""Typed results of the sessions client.

These are framework-neutral: nothing here knows about AutoGen or about a particular
api-version's JSON. The contract modules (``client/contracts``) build them from the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

__all__ = [
    "ApiVersion",
    "ExecutionResult",
    "ExecutionStatus",
    "ImageOutput",
    "PackageInfo",
    "PoolMetadata",
    "SessionFile",
    "SessionInfo",
]


class ApiVersion(str, Enum):
    """Every data-plane api-version of the dynamic sessions service the client speaks."""

    V2024_02_02_PREVIEW = "2024-02-02-preview"
    """Legacy contract (``code/execute``, ``properties`` wrapper)."""
    V2024_08_02_PREVIEW = "2024-08-02-preview"
    """Legacy contract plus file metadata and delete."""
    V2024_10_02_PREVIEW = "2024-10-02-preview"
    """New contract (``executions``); answers execute with 202 and ``Operation-Location``."""
    V2025_02_02_PREVIEW = "2025-02-02-preview"
    """New contract plus session management, pool metadata and shell commands."""
    V2025_10_02_PREVIEW = "2025-10-02-preview"
    """New contract plus ``outputStreamsMaxLength`` and recursive listing (the default)."""

    @property
    def is_legacy(self) -> bool:
        """Whether this version speaks the legacy (``code/execute``) contract."""
        return self in (ApiVersion.V2024_02_02_PREVIEW, ApiVersion.V2024_08_02_PREVIEW)

    @property
    def supports_session_management(self) -> bool:
        """Whether ``/session``, ``/listSessions`` and ``/metadata`` exist on this version."""
        return self in (ApiVersion.V2025_02_02_PREVIEW, ApiVersion.V2025_10_02_PREVIEW)

    @property
    def supports_shell(self) -> bool:
        """Whether shell pools accept ``shellCommand`` on this version."""
        return self.supports_session_management

    def __str__(self) -> str:
        return self.value


class ExecutionStatus(str, Enum):
    """The state of one execution, normalised across contracts."""

    NOT_STARTED = "NotStarted"
    """Accepted but not running yet (asynchronous executions)."""
    RUNNING = "Running"
    """Still running (asynchronous executions)."""
    SUCCEEDED = "Succeeded"
    """Ran to the end (legacy ``Success``; shell exit code 0)."""
    FAILED = "Failed"
    """The code raised, timed out or lost its interpreter (legacy ``Failure``; shell exit code != 0)."""
    CANCELED = "Canceled"
    """Cancelled by the service."""

    @property
    def is_terminal(self) -> bool:
        """Whether the execution has finished (no more polling needed)."""
        return self not in (ExecutionStatus.NOT_STARTED, ExecutionStatus.RUNNING)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ImageOutput:
    """An image the code displayed (for example a matplotlib figure)."""

    format: str
    """Image format as the service named it, e.g. ``png``."""
    data: bytes
    """The decoded image bytes (never base64 text)."""

    @property
    def mime_type(self) -> str:
        """A MIME type for ``data`` (``image/png`` for ``png``)."""
        fmt = self.format.lower()
        if fmt in ("jpg", "jpeg"):
            return "image/jpeg"
        if fmt == "svg":
            return "image/svg+xml"
        return f"image/{fmt}"


@dataclass
class ExecutionResult:
    """The outcome of one code or shell execution in a session."""

    execution_id: str | None
    """The execution's id (new contract; the ``operation-id`` we sent on legacy), or None."""
    identifier: str
    """The session identifier the code ran in."""
    status: ExecutionStatus
    """Normalised execution status."""
    stdout: str = ""
    """Standard output (possibly cut by the service; see ``stdout_truncated``)."""
    stderr: str = ""
    """Standard error; holds the formatted traceback when the code raised."""
    result: Any = ""
    """The JSON value of the last expression; ``""`` when the cell had none (or when it was an image)."""
    images: list[ImageOutput] = field(default_factory=list)
    """Images the code displayed, decoded."""
    execution_time_ms: int | None = None
    """Execution time the service reported, in milliseconds."""
    stdout_truncated: bool = False
    """True when the service cut stdout (it said so, or stdout reached the limit we asked for)."""
    stderr_truncated: bool = False
    """True when the service cut stderr (it said so, or stderr reached the limit we asked for)."""
    error_code: str | None = None
    """The ``error.code`` the service returned with a failed execution, if any."""
    error_message: str | None = None
    """The ``error.message`` the service returned with a failed execution, if any."""
    exit_code: int | None = None
    """Exit status of a shell command (shell pools); None for code executions."""
    timed_out: bool = False
    """True when the service said the execution hit its time limit."""
    state_lost: bool = False
    """True when the service said the interpreter was replaced (earlier variables are gone)."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The response body as received, for anything the typed fields do not cover."""
    session_guid: str | None = None
    """The ``x-ms-session-guid`` response header: names one incarnation of the session. A different
    value on a later call with the same identifier means the service replaced the session (for
    example after its cooldown expired), so interpreter state from before is gone."""
    stdout_possibly_truncated: bool = False
    """True when stdout has exactly the service's default cap of 4096 characters without a
    truncation flag, and we had asked for more (or could not ask): it may have been cut silently."""
    stderr_possibly_truncated: bool = False
    """As ``stdout_possibly_truncated``, for stderr."""

    @property
    def succeeded(self) -> bool:
        """Whether the execution finished successfully."""
        return self.status is ExecutionStatus.SUCCEEDED


@dataclass
class SessionFile:
    """A file or directory in a session's ``/mnt/data``."""

    name: str
    """File name (relative to its directory)."""
    type: str = "File"
    """``File`` or ``Directory``."""
    size_in_bytes: int | None = None
    """Size in bytes, when the service reported it."""
    last_modified_at: datetime | None = None
    """Last modification time (timezone-aware), when reported."""
    content_type: str | None = None
    """MIME type the service guessed (new contract only)."""
    directory: str | None = None
    """Parent directory relative to ``/mnt/data`` (2025-10 only)."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The entry as received."""

    @property
    def is_directory(self) -> bool:
        """Whether this entry is a directory."""
        return self.type.lower() == "directory"

    @property
    def relative_path(self) -> str:
        """The path relative to ``/mnt/data`` (``directory/name`` when a directory is known)."""
        if self.directory:
            return f"{self.directory.strip('/')}/{self.name}"
        return self.name


@dataclass
class SessionInfo:
    """One session of a pool (2025-02-02-preview and later)."""

    identifier: str
    """The session identifier."""
    created_at: datetime | None = None
    """When the session was allocated."""
    last_accessed_at: datetime | None = None
    """The last request on the session (resets the idle timer)."""
    expire_at: datetime | None = None
    """When the session will be deleted if left idle."""
    etag: str | None = None
    """Opaque version tag of the session."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The entry as received."""


@dataclass(frozen=True)
class PackageInfo:
    """A named, versioned component: a runtime or a pre-installed package."""

    name: str
    """Package or runtime name."""
    version: str | None = None
    """Version string, when reported."""


@dataclass
class PoolMetadata:
    """What a pool runs (``GET /metadata``, 2025-02-02-preview and later)."""

    runtimes: list[PackageInfo] = field(default_factory=list)
    """Language runtimes (e.g. Python 3.12)."""
    preinstalled_packages: list[PackageInfo] = field(default_factory=list)
    """Packages available without installing anything."""
    jupyter_kernel: dict[str, Any] = field(default_factory=dict)
    """Kernel description (name, version, ...), as received."""
    created_at: datetime | None = None
    """When the pool was created."""
    last_updated_at: datetime | None = None
    """When the pool was last updated."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The body as received."""
