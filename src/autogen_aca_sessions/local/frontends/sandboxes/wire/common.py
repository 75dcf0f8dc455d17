"""What both api-versions of the Sandboxes data plane share: request readers that accept either
shape (SDK ``2026-02-01-preview`` and spec ``2026-09-01-preview``), and the superset renderers.

Readers raise :class:`WireError` 400 naming the field; renderers emit both spellings where the
two disagree (``isDirectory``/``isDir``, ``modifiedAt``/``modifiedTime``, string and integer
``mode``, ``status.message``/``status.errorMessage``, ``networkEgress``/``http``). The few things
that differ per version (state names, create and write statuses) are a :class:`VersionWire`,
one per module of this package.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ....runtime.sandboxes.errors import InvalidRequest
from ....runtime.sandboxes.models import (
    AutoDeletePolicy,
    AutoDeleteTrigger,
    AutoSuspendPolicy,
    CommandResult,
    DiskImageRecord,
    FileEntry,
    LifecyclePolicy,
    PublicImage,
    SandboxInfo,
    SandboxResources,
    SandboxSource,
    SandboxSpec,
    SandboxState,
    SandboxStats,
    SnapshotContent,
    SnapshotRecord,
    SourceKind,
    SuspendMode,
    parse_bytes,
    parse_cpu_millicores,
)
from ...dataplane.wire.errors import WireError
from ..versions import SandboxApiVersion

__all__ = [
    "ECHOED_CREATE_FIELDS",
    "VMM_TYPE",
    "ExecRequest",
    "VersionWire",
    "bad_request",
    "iso",
    "read_create",
    "read_exec",
    "read_image_create",
    "read_labels_body",
    "read_lifecycle",
    "read_mkdir",
    "render_cpu",
    "render_disk_image",
    "render_exec",
    "render_file",
    "render_lifecycle",
    "render_public_image",
    "render_quantity",
    "render_snapshot",
    "render_stats",
]

MAX_COMMAND_CHARS = 256 * 1024
"""Longest command line accepted (bash's own limit is far above what a request should carry)."""
MAX_MAP_ENTRIES = 256
"""Most labels or environment variables in one request."""
MAX_TIMEOUT_SECONDS = 3600
"""Longest command timeout a request may ask for."""
DEFAULT_TIMEOUT_SECONDS = 290
"""A command's timeout when the request gives none: just under azure-core's 300 s read timeout,
so the SDK gets the (timed-out) result instead of its own timeout."""

ECHOED_CREATE_FIELDS = (
    "vmmType",
    "skipEgressProxy",
    "customerVnetConnectionName",
    "vnetConnectionName",
    "presetSandboxType",
)
"""Create-body fields kept and shown back but without effect here (no VMM, no VNet)."""

VMM_TYPE = "Bubblewrap"
"""``vmmType`` of sandboxes and snapshots: what isolates a local sandbox (no microVM here)."""

_VNET_FIELDS = ("customerVnetConnectionName", "vnetConnectionName")
"""The VNet connection's name in the SDK and in the spec (reference section 4: echo both)."""

_REFUSED_CREATE_FIELDS = {
    "ports": "ports (the sandbox's network is loopback only; nothing outside can reach a port)",
    "volumes": "volume mounts (the local server has no volumes)",
    "connections": "connections (the local server has no gateway connections)",
    "entrypoint": "an entrypoint (sandboxes start an agent, not an image's entrypoint)",
    "cmd": "cmd (sandboxes start an agent, not an image's command)",
    "gatewayConnections": "gateway connections",
    "credentialRefs": "credential references",
    "contentPackageDownloads": "content package downloads",
}


def bad_request(message: str, target: str | None = None, code: str = "InvalidRequest") -> WireError:
    """A 400 refusal of a request field."""
    return WireError(400, code, message, target=target)


def iso(moment: datetime) -> str:
    """An ISO 8601 UTC timestamp with ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def _get(body: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present in ``body`` (case-insensitive), or None."""
    folded = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
    for name in names:
        if name.lower() in folded:
            return folded[name.lower()]
    return None


def _object(value: Any, field: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"'{field}' must be a JSON object.", field)
    return value


def _string_map(value: Any, field: str) -> dict[str, str]:
    mapping = _object(value, field)
    if mapping is None:
        return {}
    if len(mapping) > MAX_MAP_ENTRIES:
        raise bad_request(
            f"'{field}' has {len(mapping)} entries; at most {MAX_MAP_ENTRIES} are allowed.", field
        )
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if not isinstance(item, str) or not key or "\x00" in key or "\x00" in item:
            raise bad_request(f"'{field}' must map non-empty names to strings without NUL characters.", field)
        out[key] = item
    return out


def _boolean(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"'{field}' must be true or false.", field)
    return value


def _seconds(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise bad_request(f"'{field}' must be a non-negative number of seconds.", field)
    if value > 10 * 365 * 24 * 3600:
        raise bad_request(f"'{field}' is more than ten years.", field)
    return float(value)


def _runtime(call: Callable[[], Any], field: str) -> Any:
    """Run a runtime parser, turning its :class:`InvalidRequest` into a 400 naming ``field``."""
    try:
        return call()
    except InvalidRequest as exc:
        raise bad_request(exc.message, exc.target or field) from exc


# ---------------------------------------------------------------------------------------------
# Readers


def read_lifecycle(body: Any, current: LifecyclePolicy | None = None) -> LifecyclePolicy:
    """A lifecycle policy from the SDK's ``{autoSuspendPolicy, autoDeletePolicy}`` or the spec's
    spellings (``autoSuspend``, ``idleTimeoutInSeconds``, ``deleteIntervalInDays``, ``trigger``);
    a part left out keeps ``current``'s."""
    base = current or LifecyclePolicy()
    policy = _object(body, "lifecycle")
    if policy is None:
        return base
    suspend = base.auto_suspend
    raw_suspend = _object(_get(policy, "autoSuspendPolicy", "autoSuspend"), "lifecycle.autoSuspendPolicy")
    if raw_suspend is not None:
        interval = _seconds(
            _get(raw_suspend, "interval", "idleTimeoutInSeconds", "idleTimeoutSeconds"),
            "lifecycle.autoSuspendPolicy.interval",
        )
        raw_mode = _get(raw_suspend, "mode")
        mode = (
            suspend.mode
            if raw_mode is None
            else _runtime(lambda: SuspendMode.parse(raw_mode), "lifecycle.autoSuspendPolicy.mode")
        )
        suspend = AutoSuspendPolicy(
            enabled=_boolean(_get(raw_suspend, "enabled"), "lifecycle.autoSuspendPolicy.enabled", True),
            interval_seconds=suspend.interval_seconds if interval is None else interval,
            mode=mode,
        )
    delete = base.auto_delete
    raw_delete = _object(_get(policy, "autoDeletePolicy", "autoDelete"), "lifecycle.autoDeletePolicy")
    if raw_delete is not None:
        seconds = _seconds(
            _get(raw_delete, "deleteIntervalInSeconds", "idleTimeoutInSeconds"), "lifecycle.autoDeletePolicy"
        )
        days = _seconds(
            _get(raw_delete, "deleteIntervalInDays"), "lifecycle.autoDeletePolicy.deleteIntervalInDays"
        )
        if seconds is None and days is not None:
            seconds = days * 86400
        raw_trigger = _get(raw_delete, "trigger")
        trigger = (
            delete.trigger
            if raw_trigger is None
            else _runtime(lambda: AutoDeleteTrigger.parse(raw_trigger), "lifecycle.autoDeletePolicy.trigger")
        )
        delete = AutoDeletePolicy(
            enabled=_boolean(_get(raw_delete, "enabled"), "lifecycle.autoDeletePolicy.enabled", True),
            interval_seconds=delete.interval_seconds if seconds is None else seconds,
            trigger=trigger,
        )
    return LifecyclePolicy(auto_suspend=suspend, auto_delete=delete)


def _source(body: Mapping[str, Any]) -> SandboxSource | None:
    preset = _get(body, "presetSandboxType")
    if preset is not None and (not isinstance(preset, str) or preset.lower() != "none"):
        raise bad_request(
            f"presetSandboxType {str(preset)[:40]!r} is not served locally; create from a public "
            "disk image (GET .../diskimages/public lists them).",
            "presetSandboxType",
        )
    refs = _object(_get(body, "sourcesRef", "sources"), "sourcesRef")
    if refs is None:
        return None
    given = {k: v for k, v in refs.items() if v is not None}
    if len(given) != 1:
        raise bad_request("'sourcesRef' must name exactly one source (diskImage or snapshot).", "sourcesRef")
    kind, raw = next(iter(given.items()))
    ref = _object(raw, f"sourcesRef.{kind}") or {}
    ident = _get(ref, "id")
    name = _get(ref, "name")
    if kind.lower() == "snapshot":
        if not isinstance(ident, str) or not ident:
            raise bad_request(
                "'sourcesRef.snapshot.id' must name a snapshot of this group.", "sourcesRef.snapshot.id"
            )
        return SandboxSource(SourceKind.SNAPSHOT, ident)
    if kind.lower() == "diskimage":
        if isinstance(ident, str) and ident:
            return SandboxSource(SourceKind.DISK_IMAGE, ident)
        if isinstance(name, str) and name:
            return SandboxSource(SourceKind.PUBLIC_IMAGE, name)
        raise bad_request(
            "'sourcesRef.diskImage' needs a 'name' (public) or an 'id' (private).", "sourcesRef.diskImage"
        )
    raise bad_request(
        f"The source '{kind[:40]}' is not served locally; use diskImage or snapshot.",
        f"sourcesRef.{kind[:40]}",
    )


def _resources(body: Mapping[str, Any]) -> SandboxResources | None:
    raw = _object(_get(body, "resources"), "resources")
    if raw is None:
        return None
    defaults = SandboxResources()
    cpu = _get(raw, "cpu")
    memory = _get(raw, "memory")
    disk = _get(raw, "disk")
    return SandboxResources(
        cpu_millicores=defaults.cpu_millicores
        if cpu is None
        else _runtime(lambda: parse_cpu_millicores(cpu), "resources.cpu"),
        memory_bytes=defaults.memory_bytes
        if memory is None
        else _runtime(lambda: parse_bytes(memory, "memory"), "resources.memory"),
        disk_bytes=defaults.disk_bytes
        if disk is None
        else _runtime(lambda: parse_bytes(disk, "disk"), "resources.disk"),
    )


def read_create(body: Any) -> SandboxSpec:
    """The sandbox a create body (SDK PUT or spec POST) asks for. The VNet connection's name is
    kept under both spellings (``customerVnetConnectionName``, ``vnetConnectionName``) so either
    version's client reads back the one it sent."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object (the sandbox to create).", "body")
    for name, what in _REFUSED_CREATE_FIELDS.items():
        value = _get(body, name)
        if value not in (None, [], {}, ""):
            raise bad_request(f"The local server does not serve {what}; leave '{name}' out.", name)
    source = _source(body)
    egress = _object(_get(body, "egressPolicy"), "egressPolicy")
    extra = {name: value for name in ECHOED_CREATE_FIELDS if (value := _get(body, name)) is not None}
    for name, value in extra.items():
        if not isinstance(value, (str, bool)) or (isinstance(value, str) and len(value) > 256):
            raise bad_request(f"'{name}' must be a short string or a boolean.", name)
    vnet = [value for name in _VNET_FIELDS if (value := extra.get(name)) is not None]
    if len(set(vnet)) > 1:
        raise bad_request(
            "'customerVnetConnectionName' and 'vnetConnectionName' name different connections.",
            "vnetConnectionName",
        )
    if vnet:
        extra.update(dict.fromkeys(_VNET_FIELDS, vnet[0]))
    spec = SandboxSpec(
        resources=_resources(body),
        labels=_string_map(_get(body, "labels"), "labels"),
        environment=_string_map(_get(body, "environment"), "environment"),
        lifecycle=read_lifecycle(_get(body, "lifecycle")),
        egress_policy=dict(egress) if egress else None,
        extra=extra,
    )
    if source is not None:
        spec = SandboxSpec(
            source=source,
            resources=spec.resources,
            labels=spec.labels,
            environment=spec.environment,
            lifecycle=spec.lifecycle,
            egress_policy=spec.egress_policy,
            extra=spec.extra,
        )
    return spec


@dataclass(frozen=True)
class ExecRequest:
    """A command to run, from ``executeShellCommand`` or ``executeCommand``."""

    command: str | None
    """A bash command line (``executeShellCommand``)."""
    argv: tuple[str, ...] | None
    """A program and its arguments, run without a shell (``executeCommand``)."""
    working_directory: str | None
    """Where it runs (the sandbox's default when None)."""
    environment: dict[str, str]
    """Variables added to the sandbox's environment for this command."""
    timeout_seconds: float
    """When the command is killed (its result then says so)."""


def _timeout(body: Mapping[str, Any]) -> float:
    raw = _get(body, "timeoutInSeconds", "timeout", "timeoutSeconds")
    if raw is None:
        return DEFAULT_TIMEOUT_SECONDS
    if (
        isinstance(raw, bool)
        or not isinstance(raw, (int, float))
        or not math.isfinite(raw)
        or not 0 < raw <= MAX_TIMEOUT_SECONDS
    ):
        raise bad_request(
            f"'timeoutInSeconds' must be a number from 1 to {MAX_TIMEOUT_SECONDS}.", "timeoutInSeconds"
        )
    return float(raw)


def _working_directory(body: Mapping[str, Any]) -> str | None:
    cwd = _get(body, "workingDirectory")
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd or len(cwd) > 4096 or "\x00" in cwd:
        raise bad_request(
            "'workingDirectory' must be a path (a non-empty string without NUL).", "workingDirectory"
        )
    return cwd


def read_exec(body: Any, *, argv: bool) -> ExecRequest:
    """An ``executeShellCommand`` body (``argv=False``: ``command`` is a bash line) or an
    ``executeCommand`` body (``argv=True``: ``command`` plus ``args``, no shell)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with a 'command'.", "body")
    command = _get(body, "command")
    if not isinstance(command, str) or not command.strip():
        raise bad_request("'command' must be a non-empty string.", "command")
    if len(command) > MAX_COMMAND_CHARS or "\x00" in command:
        raise bad_request(
            f"'command' must be at most {MAX_COMMAND_CHARS} characters, without NUL.", "command"
        )
    environment = _string_map(_get(body, "environment", "env"), "environment")
    user = _get(body, "user")
    if user not in (None, "", "root"):
        raise bad_request("Commands run as the sandbox's one user; leave 'user' out.", "user")
    args: tuple[str, ...] | None = None
    if argv:
        raw_args = _get(body, "args", "arguments")
        if raw_args is None:
            raw_args = []
        if not isinstance(raw_args, list) or not all(
            isinstance(a, str) and "\x00" not in a for a in raw_args
        ):
            raise bad_request("'args' must be a list of strings without NUL.", "args")
        if len(raw_args) > 4096 or sum(len(a) for a in raw_args) > MAX_COMMAND_CHARS:
            raise bad_request("'args' is too long.", "args")
        args = (command, *raw_args)
    return ExecRequest(
        command=None if argv else command,
        argv=args,
        working_directory=_working_directory(body),
        environment=environment,
        timeout_seconds=_timeout(body),
    )


def read_labels_body(body: Any) -> tuple[dict[str, str], frozenset[SnapshotContent]]:
    """The labels of a snapshot or commit body (``{}`` or ``{"labels": {"name": ...}}``, or the
    spec's top-level ``name``), and what it asks to keep: the disk, plus memory when a flag such
    as ``includeMemory`` is true (which the runtime refuses with a clear error)."""
    if body is None:
        return {}, frozenset({SnapshotContent.DISK})
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "body")
    labels = _string_map(_get(body, "labels"), "labels")
    name = _get(body, "name")
    if name is not None:
        if not isinstance(name, str) or len(name) > 256:
            raise bad_request("'name' must be a string of at most 256 characters.", "name")
        labels.setdefault("name", name)
    keep = {SnapshotContent.DISK}
    if any(_get(body, flag) is True for flag in ("includeMemory", "memory", "includeProcessMemory")):
        keep.add(SnapshotContent.MEMORY)
    return labels, frozenset(keep)


def read_image_create(body: Any) -> tuple[str, dict[str, str]]:
    """The registry image and labels of a disk-image create: the SDK's ``{"image": {"base"},
    "labels"}`` or the spec's ``{"source": {"kind": "registry", "imageUrl"}, "name", "labels"}``."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "body")
    labels = _string_map(_get(body, "labels"), "labels")
    name = _get(body, "name")
    if isinstance(name, str) and name:
        labels.setdefault("name", name[:256])
    image = _object(_get(body, "image"), "image")
    source = _object(_get(body, "source"), "source")
    if image is not None:
        base = _get(image, "base")
        field = "image.base"
    elif source is not None:
        kind = _get(source, "kind")
        if not isinstance(kind, str) or kind.lower() != "registry":
            raise bad_request(
                "Only 'registry' disk-image sources are understood ('blob' is not).", "source.kind"
            )
        base = _get(source, "imageUrl")
        field = "source.imageUrl"
    else:
        raise bad_request("Name the image: 'image.base' (SDK) or 'source.imageUrl' (spec).", "image")
    if not isinstance(base, str) or not base.strip() or len(base) > 1024:
        raise bad_request(f"'{field}' must name a registry image.", field)
    return base, labels


def read_mkdir(body: Any) -> tuple[str, bool, int | None]:
    """``{"path", "createParents"?, "mode"?}`` -> path, create parents (default true), mode."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with a 'path'.", "body")
    path = _get(body, "path")
    if not isinstance(path, str) or not path or len(path) > 4096 or "\x00" in path:
        raise bad_request("'path' must be a non-empty path without NUL.", "path")
    parents = _boolean(_get(body, "createParents"), "createParents", True)
    return path, parents, read_mode(_get(body, "mode"))


def read_mode(value: Any) -> int | None:
    """A file mode: ``"0644"``/``"644"`` (SDK strings, octal) or an integer (spec)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise bad_request("'mode' must be an octal string such as '0644' or an integer.", "mode")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 5:
        try:
            mode = int(value.strip(), 8)
        except ValueError as exc:
            raise bad_request("'mode' must be an octal string such as '0644'.", "mode") from exc
    else:
        raise bad_request("'mode' must be an octal string such as '0644' or an integer.", "mode")
    if not 0 <= mode <= 0o7777:
        raise bad_request("'mode' must be between 0 and 07777.", "mode")
    return mode


# ---------------------------------------------------------------------------------------------
# Renderers (the same superset for both versions)


def render_cpu(millicores: int) -> str:
    """A CPU quantity as the SDK sends it (``"1000m"``)."""
    return f"{millicores}m"


def render_quantity(value: int) -> str:
    """A byte quantity in the largest binary unit that divides it (``"2048Mi"``, ``"20Gi"``)."""
    for unit, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def render_lifecycle(policy: LifecyclePolicy) -> dict[str, Any]:
    """The policy under both the SDK's and the spec's names."""
    suspend = {
        "enabled": policy.auto_suspend.enabled,
        "interval": _whole(policy.auto_suspend.interval_seconds),
        "idleTimeoutInSeconds": _whole(policy.auto_suspend.interval_seconds),
        "mode": policy.auto_suspend.mode.value,
    }
    delete = {
        "enabled": policy.auto_delete.enabled,
        "deleteIntervalInSeconds": _whole(policy.auto_delete.interval_seconds),
        "trigger": policy.auto_delete.trigger.value,
    }
    return {"autoSuspendPolicy": suspend, "autoDeletePolicy": delete}


def _whole(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


def render_sources(source: SandboxSource) -> dict[str, Any]:
    """``sourcesRef`` as the create body named it."""
    if source.kind is SourceKind.SNAPSHOT:
        return {"snapshot": {"id": source.ref}}
    if source.kind is SourceKind.DISK_IMAGE:
        return {"diskImage": {"id": source.ref}}
    return {"diskImage": {"name": source.ref, "isPublic": True}}


def render_resources(resources: SandboxResources) -> dict[str, Any]:
    """``resources`` as Kubernetes quantities."""
    return {
        "cpu": render_cpu(resources.cpu_millicores),
        "memory": render_quantity(resources.memory_bytes),
        "disk": render_quantity(resources.disk_bytes),
    }


def render_exec(result: CommandResult) -> dict[str, Any]:
    """``{exitCode, stdout, stderr, executionTimeMs}`` plus whether it timed out or was cut."""
    return {
        "exitCode": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "executionTimeMs": result.duration_ms,
        "timedOut": result.timed_out,
        "truncated": result.truncated,
    }


def render_file(entry: FileEntry, *, integer_mode: bool = False) -> dict[str, Any]:
    """A FileInfo under both spellings; ``mode`` is the one field both versions name alike but
    type differently (the SDK's octal string ``"0644"``, the spec's int32), so it follows the
    version (``integer_mode``) and ``permissions`` always carries the integer."""
    modified = iso(entry.modified_at)
    return {
        "name": entry.name,
        "path": entry.path,
        "size": entry.size,
        "isDirectory": entry.is_dir,
        "isDir": entry.is_dir,
        "isSymlink": entry.is_symlink,
        "symlinkTarget": entry.symlink_target,
        "modifiedAt": modified,
        "modifiedTime": int(entry.modified_at.timestamp()),
        "mode": entry.mode if integer_mode else f"{entry.mode:04o}",
        "permissions": entry.mode,
    }


def render_snapshot(record: SnapshotRecord) -> dict[str, Any]:
    """A snapshot (SDK and spec fields), with what it keeps."""
    return {
        "id": record.id,
        "labels": dict(record.labels),
        "sandboxId": record.sandbox_id,
        "status": "Ready",
        "vmmType": VMM_TYPE,
        "createdAtUtc": iso(record.created_at),
        "resources": render_resources(record.resources),
        "sizeInMB": math.ceil(record.size_bytes / 1024**2),
        "keeps": sorted(k.value for k in record.keeps),
    }


def render_disk_image(record: DiskImageRecord) -> dict[str, Any]:
    """A private disk image (SDK and spec fields)."""
    status: dict[str, Any] = {
        "state": record.state.value,
        "message": record.message,
        "errorMessage": record.message,
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.created_at),
    }
    return {
        "id": record.id,
        "name": record.name,
        "labels": dict(record.labels),
        "image": {"base": record.base} if record.base else None,
        "status": status,
        "sourceSandboxId": record.source_sandbox_id,
        "sizeInMB": math.ceil(record.size_bytes / 1024**2),
    }


def render_public_image(image: PublicImage) -> dict[str, Any]:
    """A public disk image."""
    return {
        "name": image.name,
        "id": image.name,
        "description": image.description,
        "tags": dict(image.tags),
        "status": {"state": "Ready"},
    }


def render_stats(stats: SandboxStats) -> dict[str, Any]:
    """The union of the SDK's and the spec's stats fields."""
    available = max(0, stats.memory_limit_bytes - stats.memory_used_bytes)
    disk_free = max(0, stats.disk_limit_bytes - stats.disk_used_bytes)
    storage = {
        "usedBytes": stats.disk_used_bytes,
        "totalBytes": stats.disk_limit_bytes,
        "availableBytes": disk_free,
    }
    return {
        "cpu": {"usageNanoCores": stats.cpu_usage_nanocores, "usageCoreNanoSeconds": stats.cpu_usage_ns},
        "memory": {
            "usedBytes": stats.memory_used_bytes,
            "totalBytes": stats.memory_limit_bytes,
            "availableBytes": available,
        },
        "storage": storage,
        "disk": [{"mountPoint": "/", "filesystem": "sandbox", "label": "sandbox", **storage}],
        "network": {"rxBytes": 0, "txBytes": 0, "rxPackets": 0, "txPackets": 0},
        "processes": stats.processes,
        "uptimeSecs": int(stats.uptime_seconds),
        "source": stats.source.value,
    }


@dataclass(frozen=True)
class VersionWire:
    """What one api-version renders its own way."""

    version: SandboxApiVersion
    """The api-version."""
    state_names: Mapping[SandboxState, str]
    """The name of each runtime state in this version."""
    create_status: int
    """The status of a successful create."""
    write_status: int
    """The status of a successful file write."""
    integer_file_mode: bool
    """Whether a FileInfo's ``mode`` is an integer (spec) rather than an octal string (SDK)."""

    def render_file(self, entry: FileEntry) -> dict[str, Any]:
        """A FileInfo as this version types ``mode``."""
        return render_file(entry, integer_mode=self.integer_file_mode)

    def render_sandbox(
        self, info: SandboxInfo, *, group_id: str, management_url: str, region: str
    ) -> dict[str, Any]:
        """The Sandbox resource: every field the SDK reads and the spec defines."""
        details: dict[str, Any] | None = None
        if info.stopped_reason is not None:
            details = {
                "stoppedReason": info.stopped_reason.value,
                "stoppedAt": iso(info.stopped_at) if info.stopped_at is not None else None,
            }
        body: dict[str, Any] = {
            "id": info.id,
            "name": info.id,
            "state": self.state_names[info.state],
            "stateDetails": details,
            "labels": dict(info.labels),
            "resources": render_resources(info.resources),
            "lifecycle": render_lifecycle(info.lifecycle),
            "sourcesRef": render_sources(info.source),
            "environment": dict(info.environment),
            "egressPolicy": dict(info.egress_policy) if info.egress_policy is not None else None,
            "ports": [],
            "volumes": [],
            "connections": [],
            "entrypoint": [],
            "cmd": [],
            "hostname": info.hostname,
            "createdAt": iso(info.created_at),
            "lastActivityAt": iso(info.last_activity_at),
            "region": region,
            "sandboxGroupId": group_id,
            "managementUrl": management_url,
            "vmmType": VMM_TYPE,
            "snapshotId": info.source.ref if info.source.kind is SourceKind.SNAPSHOT else None,
            "outboundIpAddresses": [],
        }
        for name, value in info.extra.items():
            body[name] = value
        if info.failure is not None:
            body["failure"] = info.failure
        return body
