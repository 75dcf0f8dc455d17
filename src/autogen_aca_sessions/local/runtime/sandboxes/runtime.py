"""The Sandboxes runtime: groups of sandboxes, their snapshots and disk images, on one server.

One :class:`SandboxRuntime` per server holds every group. Create, stop and resume finish
before they return and return the final state (the SDK's pollers wait 3 s unless the first
answer already shows it). Sandboxes, suspended ones included, live as long as the runtime:
nothing is kept across a server restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ...config import SandboxMode
from ..bubblewrap import BWRAP_PATH, SESSION_UID_BASE, SESSION_UID_SPAN, Sandbox
from ..egress import EgressGateway, EgressPolicy, PolicyError
from .cgroups import CgroupSupport
from .container import Container, ContainerHost
from .disk import copy_disk, disk_usage, layout_disk, own_tree, remove_tree
from .errors import (
    InvalidRequest,
    LimitReached,
    NotFound,
    ResourceInUse,
    ResourceKind,
    SandboxError,
    SandboxNotFound,
    SandboxStartFailed,
    UnsupportedSnapshotContent,
)
from .images import PUBLIC_IMAGES, public_image
from .models import (
    DiskImageRecord,
    DiskImageState,
    GroupLimits,
    PublicImage,
    SandboxInfo,
    SandboxResources,
    SandboxSource,
    SandboxSpec,
    SandboxState,
    SnapshotContent,
    SnapshotRecord,
    SourceKind,
)
from .network import SandboxNetwork
from .sandbox import LocalSandbox
from .secrets import GroupSecrets

__all__ = ["SANDBOX_UID_BASE", "SandboxGroup", "SandboxRuntime"]

logger = logging.getLogger(__name__)

SANDBOX_UID_BASE = SESSION_UID_BASE + SESSION_UID_SPAN
"""First host uid given to sandboxes (a range of its own, after the session pools' uids)."""
SANDBOX_UID_SPAN = 1_000_000
"""How many sandbox uids are cycled through."""
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")


def _make_root(root: Path) -> Path:
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)
    return root


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _egress_policy(spec: SandboxSpec) -> EgressPolicy:
    """The create body's ``egressPolicy``, validated; none (or an empty one) denies everything."""
    if spec.extra.get("skipEgressProxy") is True:
        raise InvalidRequest(
            "skipEgressProxy is not served locally: a sandbox's only way out is the egress proxy "
            "(its network namespace has nothing else). Give it an egressPolicy that allows what it needs.",
            target="skipEgressProxy",
        )
    if not spec.egress_policy:
        return EgressPolicy.deny_all()
    try:
        return EgressPolicy.from_wire(spec.egress_policy)
    except PolicyError as exc:
        where = f"egressPolicy.{exc.field_path}" if exc.field_path else "egressPolicy"
        raise InvalidRequest(str(exc), code="InvalidEgressPolicy", target=where) from exc


@dataclass
class SandboxGroup:
    """One group: its limits, sandboxes, snapshots and private disk images."""

    name: str
    """The group's name."""
    limits: GroupLimits
    """Its limits and defaults."""
    directory: Path
    """Where its sandboxes', snapshots' and images' disks live."""
    sandboxes: dict[str, LocalSandbox] = field(default_factory=dict)
    """Sandboxes by id, in creation order."""
    snapshots: dict[str, SnapshotRecord] = field(default_factory=dict)
    """Snapshots by id."""
    images: dict[str, DiskImageRecord] = field(default_factory=dict)
    """Private disk images by id."""
    pending: int = 0
    """Creates under way (counted against ``max_sandboxes`` before they finish)."""
    secrets: GroupSecrets = field(default_factory=GroupSecrets)
    """Its secrets (in memory), read by its sandboxes' egress Transform rules at the edge."""


@dataclass
class _Ready:
    """A sandbox started ahead of need: public image, default resources, no group yet."""

    sandbox_id: str
    home: Path
    uid: int | None
    run: Container
    network: SandboxNetwork


class SandboxRuntime:
    """Every sandbox group of one server; make one with :meth:`open`, end it with :meth:`aclose`."""

    def __init__(
        self, root: Path, host: ContainerHost, *, egress: EgressGateway, ready_sandboxes: int = 0
    ) -> None:
        self.root = root
        """Where every disk lives (hidden from sandboxes)."""
        self.host = host
        """What every sandbox shares (confinement, cgroups, socket directory)."""
        self.egress = egress
        """The egress proxy every sandbox's only way out goes through (one socket per sandbox)."""
        self.ready_sandboxes = ready_sandboxes
        """Sandboxes kept started ahead of need (public image, default resources)."""
        self._groups: dict[str, SandboxGroup] = {}
        self._uid_counter = int.from_bytes(os.urandom(3), "big")
        self._closed = False
        self._ready: list[_Ready] = []
        self._refill_wake = asyncio.Event()
        self._ready_changed = asyncio.Condition()
        self._refill_task: asyncio.Task[None] | None = None
        if ready_sandboxes > 0:
            self._refill_task = asyncio.create_task(self._refill_loop(), name="sandboxes-ready-refill")

    @property
    def ready_count(self) -> int:
        """Sandboxes started ahead of need right now."""
        return len(self._ready)

    async def wait_ready(self, count: int | None = None) -> None:
        """Wait until ``count`` (default: all configured) ready sandboxes are started."""
        wanted = self.ready_sandboxes if count is None else count
        async with self._ready_changed:
            await self._ready_changed.wait_for(lambda: len(self._ready) >= wanted)

    async def _refill_loop(self) -> None:
        (self.root / "ready").mkdir(exist_ok=True)
        while not self._closed:
            self._refill_wake.clear()
            if len(self._ready) >= self.ready_sandboxes:
                await self._refill_wake.wait()
                continue
            sandbox_id = str(uuid.uuid4())
            home = self.root / "ready" / uuid.uuid4().hex[:12]
            uid = self._next_uid()
            # Its door opens now, denying everything until a create takes it and sets the policy.
            network = SandboxNetwork(self.egress, sandbox_id)
            try:
                await asyncio.to_thread(home.mkdir, 0o711)
                await asyncio.to_thread(layout_disk, home / "disk", uid)
                run = await Container.start(
                    self.host,
                    name=home.name,
                    disk=home / "disk",
                    uid=uid,
                    resources=SandboxResources(),
                    hostname=f"sandbox-{sandbox_id[:8]}",
                    egress=await network.attach(),
                )
            except (OSError, SandboxError, ValueError) as exc:
                logger.warning("could not start a ready sandbox: %s", exc)
                await network.detach()
                await asyncio.to_thread(remove_tree, home)
                await asyncio.sleep(5)  # do not spin on a machine that cannot start any
                continue
            if self._closed:
                await run.kill()
                await network.detach()
                await asyncio.to_thread(remove_tree, home)
                return
            self._ready.append(_Ready(sandbox_id, home, uid, run, network))
            async with self._ready_changed:
                self._ready_changed.notify_all()

    def _take_ready(self, spec: SandboxSpec, resources: SandboxResources) -> _Ready | None:
        if not self._ready or spec.source.kind is not SourceKind.PUBLIC_IMAGE:
            return None
        if resources != SandboxResources():
            return None
        ready = self._ready.pop(0)
        self._refill_wake.set()
        return ready

    @classmethod
    async def open(
        cls,
        root: Path,
        *,
        bwrap_path: str = BWRAP_PATH,
        hide: Sequence[Path] = (),
        use_cgroups: bool = True,
        ready_sandboxes: int = 1,
        protected_ports: Iterable[int] = (),
    ) -> SandboxRuntime:
        """Probe bubblewrap and cgroups (in a thread) and make the runtime's directories.

        Sandboxes need bubblewrap: without it :class:`SandboxStartFailed` is raised (the
        Sandboxes product has no unsandboxed mode). ``use_cgroups=False`` runs as on a machine
        that gives the server no cgroup: SIGSTOP/SIGCONT for Memory-mode suspend, rlimits for
        memory and processes, ``/proc`` for stats. ``ready_sandboxes`` are kept started ahead
        of need (public image, default resources) and taken by matching creates, which then
        answer in milliseconds; each holds an idle agent (a few MiB).

        Every sandbox's only way out is the runtime's egress proxy (:attr:`egress`), which never
        connects to ``protected_ports`` on this machine (the server's listeners; more with
        :meth:`protect_port`).
        """
        try:
            confinement = await asyncio.to_thread(Sandbox.resolve, SandboxMode.BWRAP, bwrap_path=bwrap_path)
        except RuntimeError as exc:
            raise SandboxStartFailed(f"Sandboxes need bubblewrap: {exc}") from exc
        cgroups = await asyncio.to_thread(CgroupSupport.detect) if use_cgroups else CgroupSupport()
        await asyncio.to_thread(cgroups.sweep)
        root = await asyncio.to_thread(_make_root, root)
        # Sockets live in a short path (the 108-byte limit of a socket's name).
        run_base = Path(tempfile.mkdtemp(prefix="aca-sbx-"))
        host = ContainerHost(
            bubblewrap=confinement,
            cgroups=cgroups,
            run_base=run_base,
            hide=(root, run_base, *hide),
        )
        # Short: the proxy's socket paths (run_base/e/<sandbox id>/proxy.sock) must fit 108 bytes.
        egress = EgressGateway(run_base / "e", protected_ports=protected_ports)
        return cls(root, host, egress=egress, ready_sandboxes=ready_sandboxes)

    def protect_port(self, port: int) -> None:
        """Never let a sandbox reach ``port`` on this machine, whatever its policy (a server listener)."""
        self.egress.protect(port)

    async def aclose(self) -> None:
        """Delete every sandbox (killing its processes) and the runtime's directories."""
        self._closed = True
        if self._refill_task is not None:
            self._refill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill_task
        for ready in self._ready:
            await ready.run.kill()
            await ready.network.detach()
            await asyncio.to_thread(remove_tree, ready.home)
        self._ready.clear()
        for name in list(self._groups):
            await self.delete_group(name)
        await self.egress.close()
        await asyncio.to_thread(remove_tree, self.host.run_base)

    async def __aenter__(self) -> SandboxRuntime:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def unenforced_limits(self) -> list[str]:
        """cgroup controllers this machine does not give the runtime (their limits fall back to rlimits)."""
        return self.host.cgroups.missing

    # -- groups ------------------------------------------------------------------------------

    def create_group(self, name: str, limits: GroupLimits | None = None) -> SandboxGroup:
        """Create a group, or replace an existing group's limits (its sandboxes stay)."""
        if not isinstance(name, str) or not _GROUP_NAME.match(name):
            raise InvalidRequest(f"Invalid sandbox group name {name!r}.", target="name")
        limits = limits or GroupLimits()
        if limits.max_sandboxes < 0:
            raise InvalidRequest("maxSandboxCount must not be negative.", target="maxSandboxCount")
        existing = self._groups.get(name)
        if existing is not None:
            existing.limits = limits
            return existing
        directory = self.root / uuid.uuid4().hex[:12]
        directory.mkdir(mode=0o700)
        group = SandboxGroup(name=name, limits=limits, directory=directory)
        self._groups[name] = group
        return group

    def get_group(self, name: str) -> SandboxGroup:
        """The group called ``name``."""
        group = self._groups.get(name)
        if group is None:
            raise NotFound(ResourceKind.GROUP, name)
        return group

    def list_groups(self) -> list[SandboxGroup]:
        """Every group, in creation order."""
        return list(self._groups.values())

    def secrets(self, group_name: str) -> GroupSecrets:
        """The group's secrets (for Transform rules of its sandboxes' egress policies)."""
        return self.get_group(group_name).secrets

    async def delete_group(self, name: str) -> None:
        """Delete a group with all its sandboxes, snapshots and images."""
        group = self.get_group(name)
        del self._groups[name]
        await asyncio.gather(*(sandbox.destroy() for sandbox in list(group.sandboxes.values())))
        group.sandboxes.clear()
        await asyncio.to_thread(remove_tree, group.directory)

    # -- sandboxes ---------------------------------------------------------------------------

    def _next_uid(self) -> int | None:
        if not self.host.bubblewrap.drops_privileges:
            return None
        uid = SANDBOX_UID_BASE + self._uid_counter % SANDBOX_UID_SPAN
        self._uid_counter += 1
        return uid

    async def create(self, group_name: str, spec: SandboxSpec) -> SandboxInfo:
        """Create a sandbox and start it; returns it Running (or raises, leaving nothing behind)."""
        group = self.get_group(group_name)
        if len(group.sandboxes) + group.pending >= group.limits.max_sandboxes:
            raise LimitReached(
                f"Sandbox group '{group.name}' holds its maximum of {group.limits.max_sandboxes} sandboxes "
                "(suspended ones count); delete one or raise maxSandboxCount.",
                retry_after=10,
                code="MaxSandboxCountReached",
            )
        policy = _egress_policy(spec)
        source_dir, inherited = self._source(group, spec.source)
        resources = spec.resources or inherited or group.limits.default_resources
        environment = spec.environment
        if spec.source.kind is SourceKind.SNAPSHOT and not environment:
            environment = group.snapshots[spec.source.ref].environment
        ready = self._take_ready(spec, resources)
        sandbox_id = ready.sandbox_id if ready is not None else str(uuid.uuid4())
        uid = ready.uid if ready is not None else self._next_uid()
        network = ready.network if ready is not None else SandboxNetwork(self.egress, sandbox_id)
        network.secrets = group.secrets
        network.set_policy(policy)  # before anything in the sandbox runs a command

        async def materialize(disk: Path) -> None:
            if source_dir is None:
                await asyncio.to_thread(layout_disk, disk, uid)
                return
            if not source_dir.exists():
                raise SandboxStartFailed(f"the source of sandbox {sandbox_id} is gone")
            await copy_disk(source_dir, disk)
            if uid is not None:
                await asyncio.to_thread(own_tree, disk, uid)
            await asyncio.to_thread(layout_disk, disk, uid)

        sandbox = LocalSandbox(
            self.host,
            group=group.name,
            sandbox_id=sandbox_id,
            spec=SandboxSpec(
                source=spec.source,
                resources=resources,
                labels=dict(spec.labels),
                environment=dict(environment),
                lifecycle=spec.lifecycle,
                egress_policy=spec.egress_policy,
                extra=dict(spec.extra),
            ),
            resources=resources,
            home=group.directory / (ready.home.name if ready is not None else uuid.uuid4().hex[:12]),
            uid=uid,
            materialize=materialize,
            on_auto_delete=self._auto_delete,
            network=network,
        )
        group.pending += 1
        try:
            if ready is not None:
                # The run's mounts follow the directory: a rename on one file system moves it.
                await asyncio.to_thread(ready.home.rename, sandbox.home)
                await sandbox.start(ready.run)
            else:
                await asyncio.to_thread(sandbox.home.mkdir, 0o711)
                await sandbox.start()
        except BaseException:
            if ready is not None and sandbox.container is None:
                await asyncio.shield(ready.run.kill())
            await asyncio.shield(sandbox.destroy())
            raise
        finally:
            group.pending -= 1
        if self._groups.get(group.name) is not group:  # the group was deleted meanwhile
            await sandbox.destroy()
            raise NotFound(ResourceKind.GROUP, group.name)
        group.sandboxes[sandbox.id] = sandbox
        return sandbox.info

    def _source(
        self, group: SandboxGroup, source: SandboxSource
    ) -> tuple[Path | None, SandboxResources | None]:
        """The directory a new disk is copied from (``None``: empty) and inherited resources."""
        if source.kind is SourceKind.PUBLIC_IMAGE:
            if public_image(source.ref) is None:
                names = ", ".join(i.name for i in PUBLIC_IMAGES)
                raise InvalidRequest(f"No public disk image {source.ref!r}; this server has {names}.",
                                     target="sourcesRef.diskImage.name")  # fmt: skip
            return None, None
        if source.kind is SourceKind.SNAPSHOT:
            snapshot = group.snapshots.get(source.ref)
            if snapshot is None:
                raise NotFound(ResourceKind.SNAPSHOT, source.ref)
            return self._snapshot_dir(group, snapshot.id), snapshot.resources
        image = group.images.get(source.ref)
        if image is None:
            raise NotFound(ResourceKind.DISK_IMAGE, source.ref)
        if image.state is not DiskImageState.READY:
            raise InvalidRequest(f"Disk image {image.id!r} is {image.state.value}: {image.message}",
                                 target="sourcesRef.diskImage.id")  # fmt: skip
        return self._image_dir(group, image.id), None

    def sandbox(self, group_name: str, sandbox_id: str) -> LocalSandbox:
        """The live sandbox (for commands, files, stop/resume, stats, lifecycle)."""
        sandbox = self.get_group(group_name).sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.state is SandboxState.DELETING:
            raise SandboxNotFound(sandbox_id)
        return sandbox

    def get(self, group_name: str, sandbox_id: str) -> SandboxInfo:
        """A sandbox's facts now."""
        return self.sandbox(group_name, sandbox_id).info

    def list_sandboxes(self, group_name: str, labels: Mapping[str, str] | None = None) -> list[SandboxInfo]:
        """The group's sandboxes carrying every label of ``labels`` (all of them without)."""
        wanted = dict(labels or {})
        out: list[SandboxInfo] = []
        for sandbox in self.get_group(group_name).sandboxes.values():
            if sandbox.state is SandboxState.DELETING:
                continue
            if all(sandbox.spec.labels.get(k) == v for k, v in wanted.items()):
                out.append(sandbox.info)
        return out

    async def delete(self, group_name: str, sandbox_id: str) -> None:
        """Kill a sandbox's processes and remove its disk; it is not found afterwards."""
        group = self.get_group(group_name)
        sandbox = self.sandbox(group_name, sandbox_id)
        try:
            await sandbox.destroy()
        finally:
            group.sandboxes.pop(sandbox_id, None)

    async def wait_until_gone(
        self, group_name: str, sandbox_id: str, *, timeout: float | None = None
    ) -> None:
        """Wait until a sandbox being deleted (by request or by its lifecycle) is no longer listed."""

        async def wait() -> None:
            group = self.get_group(group_name)
            sandbox = group.sandboxes.get(sandbox_id)
            if sandbox is not None:
                await sandbox.wait_deleted()

        await asyncio.wait_for(wait(), timeout)

    async def _auto_delete(self, sandbox: LocalSandbox) -> None:
        with contextlib.suppress(NotFound):
            await self.delete(sandbox.group, sandbox.id)

    # -- snapshots and disk images ----------------------------------------------------------

    def _snapshot_dir(self, group: SandboxGroup, snapshot_id: str) -> Path:
        return group.directory / "snapshots" / snapshot_id

    def _image_dir(self, group: SandboxGroup, image_id: str) -> Path:
        return group.directory / "images" / image_id

    def _check_room(self, group: SandboxGroup) -> None:
        if len(group.snapshots) + len(group.images) >= group.limits.max_snapshots:
            raise LimitReached(
                f"Sandbox group '{group.name}' keeps its maximum of {group.limits.max_snapshots} snapshots "
                "and disk images; delete some first.",
                retry_after=10,
            )

    async def _copy_sandbox_disk(self, sandbox: LocalSandbox, target: Path) -> int:
        await sandbox.copy_disk_to(target)
        return await asyncio.to_thread(disk_usage, target)

    async def snapshot(
        self,
        group_name: str,
        sandbox_id: str,
        labels: Mapping[str, str] | None = None,
        *,
        keep: frozenset[SnapshotContent] = frozenset({SnapshotContent.DISK}),
    ) -> SnapshotRecord:
        """Snapshot a sandbox's disk (``/root``, ``/home``, ``/mnt/data``).

        A snapshot never holds process memory, ``/tmp`` or running processes: asking for
        :attr:`SnapshotContent.MEMORY` raises :class:`UnsupportedSnapshotContent` (CRIU cannot
        checkpoint processes on this kernel), rather than returning half of what was asked.
        """
        if SnapshotContent.MEMORY in keep:
            raise UnsupportedSnapshotContent(
                "Local snapshots keep the sandbox's disk only (/root, /home, /mnt/data): process memory "
                "cannot be checkpointed on this machine (CRIU fails on this kernel's vDSO). Use a "
                "Memory-mode stop to keep processes, or snapshot the disk alone.",
                target="memory",
            )
        group = self.get_group(group_name)
        sandbox = self.sandbox(group_name, sandbox_id)
        self._check_room(group)
        snapshot_id = str(uuid.uuid4())
        target = self._snapshot_dir(group, snapshot_id)
        size = await self._copy_sandbox_disk(sandbox, target)
        record = SnapshotRecord(
            id=snapshot_id,
            group=group.name,
            sandbox_id=sandbox.id,
            labels=dict(labels or {}),
            created_at=_now(),
            resources=sandbox.resources,
            environment=dict(sandbox.spec.environment),
            size_bytes=size,
            keeps=frozenset({SnapshotContent.DISK}),
        )
        group.snapshots[snapshot_id] = record
        return record

    def list_snapshots(self, group_name: str) -> list[SnapshotRecord]:
        """The group's snapshots."""
        return list(self.get_group(group_name).snapshots.values())

    def get_snapshot(self, group_name: str, snapshot_id: str) -> SnapshotRecord:
        """One snapshot."""
        record = self.get_group(group_name).snapshots.get(snapshot_id)
        if record is None:
            raise NotFound(ResourceKind.SNAPSHOT, snapshot_id)
        return record

    async def delete_snapshot(self, group_name: str, snapshot_id: str) -> None:
        """Delete a snapshot (sandboxes restored from it keep their own copies)."""
        group = self.get_group(group_name)
        self.get_snapshot(group_name, snapshot_id)
        del group.snapshots[snapshot_id]
        await asyncio.to_thread(remove_tree, self._snapshot_dir(group, snapshot_id))

    async def commit(
        self, group_name: str, sandbox_id: str, labels: Mapping[str, str] | None = None
    ) -> DiskImageRecord:
        """Make a private disk image of a sandbox's disk, usable as a create source; Ready on return."""
        group = self.get_group(group_name)
        sandbox = self.sandbox(group_name, sandbox_id)
        self._check_room(group)
        image_id = str(uuid.uuid4())
        size = await self._copy_sandbox_disk(sandbox, self._image_dir(group, image_id))
        labels = dict(labels or {})
        record = DiskImageRecord(
            id=image_id,
            group=group.name,
            name=labels.get("name", image_id),
            labels=labels,
            created_at=_now(),
            state=DiskImageState.READY,
            message=None,
            base=None,
            source_sandbox_id=sandbox.id,
            size_bytes=size,
        )
        group.images[image_id] = record
        return record

    def create_registry_image(
        self, group_name: str, base: str, labels: Mapping[str, str] | None = None
    ) -> DiskImageRecord:
        """Record a disk image asked for from a container registry: always ``Failed`` here.

        The local server reaches no registry; the record says so in ``message`` (the SDK's
        poller raises it), instead of pretending to have pulled the image.
        """
        group = self.get_group(group_name)
        if not isinstance(base, str) or not base.strip():
            raise InvalidRequest("image.base must name a registry image.", target="image.base")
        self._check_room(group)
        labels = dict(labels or {})
        image_id = str(uuid.uuid4())
        record = DiskImageRecord(
            id=image_id,
            group=group.name,
            name=labels.get("name", image_id),
            labels=labels,
            created_at=_now(),
            state=DiskImageState.FAILED,
            message=(
                f"The local server cannot pull {base!r}: it reaches no container registry. Create sandboxes "
                "from a public image or from a disk image made by commit."
            ),
            base=base,
            source_sandbox_id=None,
            size_bytes=0,
        )
        group.images[image_id] = record
        return record

    def list_disk_images(self, group_name: str) -> list[DiskImageRecord]:
        """The group's private disk images."""
        return list(self.get_group(group_name).images.values())

    def get_disk_image(self, group_name: str, image_id: str) -> DiskImageRecord:
        """One private disk image."""
        record = self.get_group(group_name).images.get(image_id)
        if record is None:
            raise NotFound(ResourceKind.DISK_IMAGE, image_id)
        return record

    async def delete_disk_image(self, group_name: str, image_id: str) -> None:
        """Delete a private disk image; refused while a sandbox that was made from it exists."""
        group = self.get_group(group_name)
        self.get_disk_image(group_name, image_id)
        users = [s.id for s in group.sandboxes.values()
                 if s.source.kind is SourceKind.DISK_IMAGE and s.source.ref == image_id]  # fmt: skip
        if users:
            raise ResourceInUse(f"Disk image {image_id!r} is used by sandbox(es) {', '.join(users)}.")
        del group.images[image_id]
        await asyncio.to_thread(remove_tree, self._image_dir(group, image_id))

    @staticmethod
    def public_images() -> list[PublicImage]:
        """The public disk images every group can create from."""
        return list(PUBLIC_IMAGES)

    @staticmethod
    def public_image(name: str) -> PublicImage:
        """One public image by name."""
        image = public_image(name)
        if image is None:
            raise NotFound(ResourceKind.DISK_IMAGE, name)
        return image
