"""The Sandboxes runtime's vocabulary: states, modes, specs and results, as frozen values.

Names follow the SDK (api-version ``2026-02-01-preview``); the wire layer renames per
api-version (``Suspended`` → ``Idle``/``Stopped`` for the 2026-09-01 spec, and so on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...choice import Choice
from .errors import InvalidRequest

__all__ = [
    "AutoDeletePolicy",
    "AutoDeleteTrigger",
    "AutoSuspendPolicy",
    "CommandResult",
    "DiskImageRecord",
    "DiskImageState",
    "FileEntry",
    "GroupLimits",
    "LifecyclePolicy",
    "OutputChunk",
    "OutputStream",
    "PublicImage",
    "SandboxInfo",
    "SandboxResources",
    "SandboxSource",
    "SandboxSpec",
    "SandboxState",
    "SandboxStats",
    "SnapshotContent",
    "SnapshotRecord",
    "SourceKind",
    "StatsSource",
    "StoppedReason",
    "SuspendMode",
    "parse_bytes",
    "parse_cpu_millicores",
]


class _Named(Choice):
    """A sandbox value from a request; a bad one is :class:`InvalidRequest` (HTTP 400)."""

    @classmethod
    def refusal(cls, value: object) -> Exception:
        choices = ", ".join(m.value for m in cls)
        return InvalidRequest(f"{cls.__name__} must be one of {choices}, not {value!r}.")


class SandboxState(_Named):
    """Where a sandbox is in its life."""

    CREATING = "Creating"
    """Its disk is being laid out and its agent started (never seen by a caller of ``create``)."""
    RUNNING = "Running"
    """Its agent is up; commands and files work."""
    STOPPING = "Stopping"
    """A stop (user or idle) is under way."""
    SUSPENDED = "Suspended"
    """Memory mode: every process is frozen, memory and disk kept."""
    STOPPED = "Stopped"
    """Disk or None mode: no process left; the disk is kept (Disk) or dropped (None)."""
    RESUMING = "Resuming"
    """A resume is under way."""
    DELETING = "Deleting"
    """A delete is under way; afterwards the sandbox is gone (not found)."""
    FAILED = "Failed"
    """Its processes could not be started or thawed; only delete is useful."""


class StoppedReason(_Named):
    """Why a sandbox is stopped or suspended (``stateDetails.stoppedReason``)."""

    USER_STOPPED = "UserStopped"
    """A stop request."""
    IDLE = "Idle"
    """The auto-suspend policy's idle interval passed without activity."""


class SuspendMode(_Named):
    """What a stop keeps (from the lifecycle policy; a stop request has no body)."""

    MEMORY = "Memory"
    """Processes are frozen: memory, open ports and the disk are there after resume."""
    DISK = "Disk"
    """Processes are killed, the disk is kept; resume starts a fresh agent."""
    NONE = "None"
    """Nothing is kept: processes are killed and the disk goes back to the sandbox's source."""


class AutoDeleteTrigger(_Named):
    """From when an auto-delete interval counts."""

    AFTER_SUSPEND = "AfterSuspend"
    """From the moment the sandbox was last stopped or suspended (the default)."""
    AFTER_CREATION = "AfterCreation"
    """From the sandbox's creation."""


class SourceKind(_Named):
    """What a sandbox's disk starts from."""

    PUBLIC_IMAGE = "PublicImage"
    """A public disk image by name (``python-3.12``, ``ubuntu``)."""
    DISK_IMAGE = "DiskImage"
    """A private disk image of the group, by id (made by ``commit``)."""
    SNAPSHOT = "Snapshot"
    """A snapshot of the group, by id."""


class SnapshotContent(_Named):
    """What a snapshot can be asked to keep."""

    DISK = "Disk"
    """The sandbox's writable directories (``/root``, ``/home``, ``/mnt/data``); always kept."""
    MEMORY = "Memory"
    """Process memory: cannot be kept here (CRIU fails on this kernel's vDSO); asking is an error."""


class DiskImageState(_Named):
    """Where a disk image is (``status.state``)."""

    BUILDING = "Building"
    """Being made."""
    READY = "Ready"
    """Usable as a create source."""
    FAILED = "Failed"
    """Could not be made (``message`` says why)."""


class OutputStream(_Named):
    """Which stream a piece of command output came from."""

    STDOUT = "stdout"
    """Standard output."""
    STDERR = "stderr"
    """Standard error."""


class StatsSource(_Named):
    """Where a sandbox's figures were read."""

    CGROUP = "cgroup"
    """The sandbox's own cgroups (exact)."""
    PROC = "proc"
    """A walk of the sandbox's processes in ``/proc`` (no cgroup could be made here)."""


_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m?)\s*$")
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]i?|[kmgtpe]|)\s*[Bb]?\s*$")
_BYTE_UNITS = {
    "": 1,
    "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5, "E": 1000**6,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6,
}  # fmt: skip


def parse_cpu_millicores(value: str | float) -> int:
    """A Kubernetes CPU quantity (``"1000m"``, ``"0.5"``, ``2``) in millicores."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        millis = float(value) * 1000
    elif isinstance(value, str) and (m := _CPU.match(value)):
        millis = float(m.group(1)) * (1 if m.group(2) else 1000)
    else:
        raise InvalidRequest(f"resources.cpu must be a CPU quantity such as '1000m' or '0.5', not {value!r}.")
    if millis < 1 or millis > 1_000_000:
        raise InvalidRequest(f"resources.cpu {value!r} is out of range.", target="resources.cpu")
    return int(millis)


def parse_bytes(value: str | int, what: str = "memory") -> int:
    """A Kubernetes memory quantity (``"2048Mi"``, ``"20Gi"``, ``"1G"``, ``512``) in bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str) and (m := _BYTES.match(value)):
        amount = float(m.group(1)) * _BYTE_UNITS[m.group(2)]
    else:
        raise InvalidRequest(f"resources.{what} must be a quantity such as '2048Mi', not {value!r}.")
    if amount < 1 or amount > 2**62:
        raise InvalidRequest(f"resources.{what} {value!r} is out of range.", target=f"resources.{what}")
    return int(amount)


@dataclass(frozen=True)
class SandboxResources:
    """What a sandbox may use; enforced through cgroups and a disk quota (see ``limits`` in the runtime)."""

    cpu_millicores: int = 1000
    """CPU time, in thousandths of a core (a CFS quota where the machine allows cgroups)."""
    memory_bytes: int = 2 * 1024**3
    """Memory of all its processes together (memory cgroup; else each process's address space)."""
    disk_bytes: int = 5 * 1024**3
    """Space its writable directories may take; past it writes are refused and commands stopped."""
    max_processes: int = 512
    """Processes and threads at once (a pids cgroup, else ``RLIMIT_NPROC``): fork bombs stop here."""


@dataclass(frozen=True)
class SandboxSource:
    """What a sandbox's disk starts from: exactly one image or snapshot."""

    kind: SourceKind
    """Public image, private disk image or snapshot."""
    ref: str
    """The public image's name, or the disk image's or snapshot's id."""


@dataclass(frozen=True)
class AutoSuspendPolicy:
    """Suspend after a quiet interval; also fixes what every stop keeps."""

    enabled: bool = True
    """Whether idle sandboxes are suspended automatically."""
    interval_seconds: float = 300
    """Seconds without a command or file operation after which the sandbox is suspended."""
    mode: SuspendMode = SuspendMode.MEMORY
    """What a stop keeps, automatic or requested."""


@dataclass(frozen=True)
class AutoDeletePolicy:
    """Delete a sandbox some time after it was stopped (or created)."""

    enabled: bool = False
    """Whether the sandbox is deleted automatically."""
    interval_seconds: float = 0
    """Seconds after the trigger at which it is deleted."""
    trigger: AutoDeleteTrigger = AutoDeleteTrigger.AFTER_SUSPEND
    """What the interval counts from."""


@dataclass(frozen=True)
class LifecyclePolicy:
    """A sandbox's lifecycle: auto-suspend (and the suspend mode) and auto-delete."""

    auto_suspend: AutoSuspendPolicy = field(default_factory=AutoSuspendPolicy)
    """When to suspend, and how."""
    auto_delete: AutoDeletePolicy = field(default_factory=AutoDeletePolicy)
    """When to delete."""


@dataclass(frozen=True)
class SandboxSpec:
    """Everything a create request asks for, parsed by the wire layer."""

    source: SandboxSource = field(
        default_factory=lambda: SandboxSource(SourceKind.PUBLIC_IMAGE, "python-3.12")
    )
    """What the disk starts from."""
    resources: SandboxResources | None = None
    """Limits; ``None`` takes the group's defaults (or the snapshot's, for a snapshot source)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels, matched by ``list(labels=...)``."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Environment variables of every command (a command's own ``env`` adds to them)."""
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    """Auto-suspend (with the suspend mode) and auto-delete."""
    egress_policy: Mapping[str, Any] | None = None
    """The egress policy as sent, kept opaque here (the egress runtime interprets it)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other create-body fields the wire layer wants echoed back (ports, volumes, ...), opaque here."""


@dataclass(frozen=True)
class GroupLimits:
    """Limits and defaults of one sandbox group."""

    max_sandboxes: int = 100
    """``maxSandboxCount``: sandboxes the group holds at once, in any state (suspended ones count)."""
    max_snapshots: int = 1000
    """Snapshots plus disk images the group keeps at once."""
    default_resources: SandboxResources = field(default_factory=SandboxResources)
    """Resources of a sandbox whose create names none."""


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as the wire layer shows it, at one moment (a copy: it does not change)."""

    id: str
    """The sandbox's id (a UUID)."""
    group: str
    """The group's name."""
    state: SandboxState
    """Its state."""
    stopped_reason: StoppedReason | None
    """Why it is stopped or suspended; ``None`` otherwise."""
    stopped_at: datetime | None
    """When it was last stopped or suspended (UTC)."""
    created_at: datetime
    """When it was created (UTC)."""
    last_activity_at: datetime
    """The last command, file operation or resume (UTC): the idle clock starts here."""
    source: SandboxSource
    """What its disk started from."""
    resources: SandboxResources
    """Its limits in force."""
    labels: Mapping[str, str]
    """Its labels."""
    environment: Mapping[str, str]
    """Its environment variables."""
    lifecycle: LifecyclePolicy
    """Its lifecycle policy in force."""
    egress_policy: Mapping[str, Any] | None
    """Its egress policy, opaque."""
    extra: Mapping[str, Any]
    """Create-body fields kept for the wire layer."""
    hostname: str
    """The hostname commands see (``uname -n``)."""
    failure: str | None = None
    """Why it is ``Failed``, when it is."""


@dataclass(frozen=True)
class OutputChunk:
    """A piece of a running command's output, as it arrives (for streaming)."""

    stream: OutputStream
    """stdout or stderr."""
    data: bytes
    """The bytes as the command wrote them (not necessarily whole UTF-8 characters)."""


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command."""

    exit_code: int
    """Its exit status; 128+N when killed by signal N (137 after a timeout)."""
    stdout: str
    """Its standard output (UTF-8, undecodable bytes replaced), up to the runtime's output cap."""
    stderr: str
    """Its standard error, likewise; runtime notes (timeout, truncation, quota) are appended here."""
    duration_ms: int
    """Milliseconds from start to exit as the agent measured them."""
    timed_out: bool = False
    """Whether the command was killed because its timeout passed."""
    truncated: bool = False
    """Whether output beyond the cap was dropped."""


@dataclass(frozen=True)
class FileEntry:
    """A file or directory inside a sandbox."""

    name: str
    """Its own name (``""`` for ``/``)."""
    path: str
    """Its absolute path as the sandbox sees it."""
    size: int
    """Size in bytes (0 for directories)."""
    is_dir: bool
    """Whether it is a directory."""
    is_symlink: bool
    """Whether it is a symbolic link (then size, mode and time are the link target's)."""
    symlink_target: str | None
    """Where the link points, as written in it; ``None`` for other entries."""
    mode: int
    """Permission bits (``0o644``)."""
    modified_at: datetime
    """Last modification time, UTC."""


@dataclass(frozen=True)
class SnapshotRecord:
    """A snapshot of a sandbox's disk."""

    id: str
    """The snapshot's id."""
    group: str
    """The group it belongs to."""
    sandbox_id: str
    """The sandbox it was taken of."""
    labels: Mapping[str, str]
    """Its labels (``{"name": ...}`` from the SDK)."""
    created_at: datetime
    """When it was taken (UTC)."""
    resources: SandboxResources
    """The sandbox's resources, inherited by sandboxes restored from it."""
    environment: Mapping[str, str]
    """The sandbox's environment, inherited likewise."""
    size_bytes: int
    """Space its copy of the disk takes."""
    keeps: frozenset[SnapshotContent]
    """What it holds: always exactly ``{DISK}`` here."""


@dataclass(frozen=True)
class DiskImageRecord:
    """A private disk image of a group (from ``commit``, or a registry image that cannot be pulled)."""

    id: str
    """The image's id."""
    group: str
    """The group it belongs to."""
    name: str
    """Its name (the ``name`` label, else the id)."""
    labels: Mapping[str, str]
    """Its labels."""
    created_at: datetime
    """When it was made (UTC)."""
    state: DiskImageState
    """Ready, or Failed with a ``message``."""
    message: str | None
    """Why it failed, when it did."""
    base: str | None
    """The registry image it names, for images made from one (``image.base``)."""
    source_sandbox_id: str | None
    """The sandbox it was committed from, for committed images."""
    size_bytes: int
    """Space its disk takes."""


@dataclass(frozen=True)
class PublicImage:
    """A disk image every group can create sandboxes from."""

    name: str
    """Its name (``python-3.12``)."""
    description: str
    """What it holds."""
    tags: Mapping[str, str]
    """Facts about it (the Python version served)."""


@dataclass(frozen=True)
class SandboxStats:
    """A sandbox's use of CPU, memory, disk and processes at one moment."""

    cpu_usage_ns: int
    """CPU time used by its processes since it (last) started, in nanoseconds."""
    cpu_usage_nanocores: int
    """Average use since the previous stats call (or start), in billionths of a core."""
    memory_used_bytes: int
    """Memory its processes use now."""
    memory_limit_bytes: int
    """Its memory limit."""
    disk_used_bytes: int
    """Space its writable directories take."""
    disk_limit_bytes: int
    """Its disk quota."""
    processes: int
    """Processes it has now (the agent included)."""
    uptime_seconds: float
    """Seconds since its processes (last) started; 0 when it has none."""
    source: StatsSource
    """Whether the figures come from cgroups or from ``/proc``."""
