"""The one error hierarchy of the Sandboxes runtime: what went wrong, and how the wire should answer.

The runtime imports no HTTP library; each error carries an :class:`ErrorKind` (the wire layer maps
kinds to statuses, per api-version), an Azure-style error ``code`` and, for refusals that pass,
``retry_after``. No refusal is an authorization failure: the SDK retries 403 for minutes, so a full
group is :class:`LimitReached` (409/429/503 with ``Retry-After`` on the wire), never 403.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConflictingOperation",
    "DiskQuotaExceeded",
    "ErrorKind",
    "FileNotFound",
    "FileTooLarge",
    "InvalidRequest",
    "LimitReached",
    "NotFound",
    "PathOutsideSandbox",
    "ResourceInUse",
    "ResourceKind",
    "SandboxError",
    "SandboxNotFound",
    "SandboxNotRunning",
    "SandboxStartFailed",
    "UnsupportedSnapshotContent",
]


class ErrorKind(enum.Enum):
    """The class of failure; the wire layer picks the HTTP status from it."""

    INVALID = "Invalid"
    """The request itself is wrong (400)."""
    NOT_FOUND = "NotFound"
    """The named sandbox, group, snapshot, image or file does not exist (404)."""
    CONFLICT = "Conflict"
    """The request clashes with the resource's current state (409)."""
    LIMIT = "Limit"
    """A count or capacity limit is reached; retry later (429 or 503, with ``Retry-After``)."""
    TOO_LARGE = "TooLarge"
    """A body or file is larger than allowed (413)."""
    INSUFFICIENT_STORAGE = "InsufficientStorage"
    """The sandbox's disk quota is used up (507, or 413 on a file write)."""
    UNAVAILABLE = "Unavailable"
    """The runtime could not do it right now (a sandbox failed to start): 503 with ``Retry-After``."""


class ResourceKind(enum.Enum):
    """What kind of resource a :class:`NotFound` names."""

    GROUP = "SandboxGroup"
    """A sandbox group."""
    SANDBOX = "Sandbox"
    """A sandbox."""
    SNAPSHOT = "Snapshot"
    """A snapshot."""
    DISK_IMAGE = "DiskImage"
    """A disk image (private or public)."""
    FILE = "File"
    """A file or directory inside a sandbox."""
    SECRET = "Secret"
    """A secret of a group (used by egress Transform rules)."""


class SandboxError(Exception):
    """Base of every error the Sandboxes runtime raises on purpose."""

    kind: ErrorKind = ErrorKind.INVALID
    """The class of failure (the wire's status)."""
    code: str = "BadRequest"
    """The Azure error code to answer with."""

    def __init__(self, message: str, *, code: str | None = None, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        """A sentence saying what was wrong and, where possible, how to fix it."""
        if code is not None:
            self.code = code
        self.target = target
        """The request field at fault, if any."""
        self.retry_after: int | None = None
        """Seconds after which the same request may succeed (``Retry-After``), if it may."""


class InvalidRequest(SandboxError):
    """A bad argument: unknown image, malformed quantity, unsupported option."""

    kind = ErrorKind.INVALID
    code = "InvalidRequest"


class PathOutsideSandbox(InvalidRequest):
    """A file path that is not under one of the sandbox's writable directories, or escapes it."""

    code = "InvalidFilePath"


class UnsupportedSnapshotContent(InvalidRequest):
    """A snapshot asked to keep what this runtime cannot keep (process memory)."""

    code = "UnsupportedSnapshotContent"


class NotFound(SandboxError):
    """A named resource does not exist."""

    kind = ErrorKind.NOT_FOUND
    code = "NotFound"

    def __init__(self, resource: ResourceKind, name: str, message: str | None = None) -> None:
        super().__init__(
            message or f"{resource.value} '{name}' was not found.", code=f"{resource.value}NotFound"
        )
        self.resource = resource
        """What kind of resource is missing."""
        self.name = name
        """The id or name asked for."""


class SandboxNotFound(NotFound):
    """No sandbox by that id in that group (also after it was deleted)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(ResourceKind.SANDBOX, sandbox_id)


class FileNotFound(NotFound):
    """No file or directory at that path inside the sandbox."""

    def __init__(self, path: str) -> None:
        super().__init__(ResourceKind.FILE, path, f"'{path}' does not exist in the sandbox.")


class SandboxNotRunning(SandboxError):
    """The operation needs a running sandbox and this one is not (stopped, suspended, starting)."""

    kind = ErrorKind.CONFLICT
    code = "SandboxNotRunning"

    def __init__(self, sandbox_id: str, state: str) -> None:
        super().__init__(f"Sandbox '{sandbox_id}' is {state}, not Running; resume it first.")
        self.state = state
        """The state the sandbox was in (a ``SandboxState`` value)."""


class ConflictingOperation(SandboxError):
    """Another state change of the same resource is under way, or the state forbids this one."""

    kind = ErrorKind.CONFLICT
    code = "ConflictingOperation"


class ResourceInUse(SandboxError):
    """A disk image or snapshot cannot be deleted while something depends on it."""

    kind = ErrorKind.CONFLICT
    code = "ResourceInUse"


class LimitReached(SandboxError):
    """A count limit (``maxSandboxCount``, snapshots) or the machine's capacity is reached."""

    kind = ErrorKind.LIMIT
    code = "LimitReached"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class FileTooLarge(SandboxError):
    """A file write's body is larger than the server takes in one write, whatever the quota."""

    kind = ErrorKind.TOO_LARGE
    code = "RequestBodyTooLarge"


class DiskQuotaExceeded(SandboxError):
    """The sandbox's disk holds more than its ``resources.disk``."""

    kind = ErrorKind.INSUFFICIENT_STORAGE
    code = "InsufficientStorage"


class SandboxStartFailed(SandboxError):
    """The sandbox's processes could not be started (bubblewrap or the agent failed)."""

    kind = ErrorKind.UNAVAILABLE
    code = "SandboxStartFailed"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
