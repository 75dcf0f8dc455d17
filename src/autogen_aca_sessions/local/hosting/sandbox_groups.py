"""The sandbox groups of a :class:`~.server.LocalSessionsServer`: their ARM records, and the link
to the Sandboxes runtime that holds their sandboxes.

The management plane (``arm/sandbox_groups/``), the Python API (``create_sandbox_group``) and the
Sandboxes data plane (``frontends/sandboxes/``) all go through :class:`SandboxGroupHost`, so a
group made one way is seen the others. Creating or changing a group is immediate (a record and a
limit); deleting one deletes its sandboxes first, in the background, behind a long-running
operation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any

from ..runtime.sandboxes.models import GroupLimits
from ..runtime.sandboxes.runtime import SandboxRuntime
from .arm.errors import ArmError
from .arm.model import ProvisioningState, ResourceKey
from .arm.operations import ArmOperation, ArmOperationKind, ArmOperationStore, location_segment
from .arm.sandbox_groups.model import SandboxGroupResource, SandboxGroupSettings, render_group
from .arm.sandbox_groups.routes import SANDBOX_GROUPS

__all__ = ["DEFAULT_MAX_SANDBOX_COUNT", "HostedSandboxGroup", "SandboxGroupHost"]

logger = logging.getLogger("autogen_aca_sessions.local")

DEFAULT_MAX_SANDBOX_COUNT = 100
"""``maxSandboxCount`` of a group whose body names none."""


class HostedSandboxGroup:
    """A sandbox group of the server: its ARM record and its running operation."""

    def __init__(self, resource: SandboxGroupResource) -> None:
        self.runtime_id = uuid.uuid4().hex
        """The name the runtime knows it by (ARM names repeat across subscriptions and
        resource groups; the runtime's do not)."""
        self.resource = resource
        """The ARM record (settings, provisioning state, times)."""
        self.operation: ArmOperation | None = None
        """The last long-running operation started on it."""

    @property
    def key(self) -> ResourceKey:
        """Where it lives."""
        return self.resource.key

    @property
    def deleting(self) -> bool:
        """Whether a delete is under way (its data plane then answers 404)."""
        return self.resource.state is ProvisioningState.DELETING


class SandboxGroupHost:
    """Every sandbox group of one server."""

    def __init__(
        self, runtime: SandboxRuntime, operations: ArmOperationStore, *, max_groups: int = 100
    ) -> None:
        self._runtime = runtime
        self._operations = operations
        self._groups: dict[tuple[str, str, str], HostedSandboxGroup] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.max_groups = max_groups
        """Most groups at once (409 ``SandboxGroupQuotaExceeded`` past it)."""
        self.default_domain = "127.0.0.1"
        """``properties.defaultDomain`` of every group (the server's host)."""

    @property
    def runtime(self) -> SandboxRuntime:
        """The Sandboxes runtime."""
        return self._runtime

    def find(self, key: ResourceKey) -> HostedSandboxGroup | None:
        """The group at ``key`` (case-insensitive), or None."""
        return self._groups.get(key.folded)

    def list(
        self, *, subscription: str | None = None, resource_group: str | None = None
    ) -> list[HostedSandboxGroup]:
        """Groups (of a subscription, of a resource group), sorted by resource group and name."""
        found = [
            g
            for g in self._groups.values()
            if (subscription is None or g.key.subscription.lower() == subscription.lower())
            and (resource_group is None or g.key.resource_group.lower() == resource_group.lower())
        ]
        return sorted(
            found,
            key=lambda g: (g.key.subscription.lower(), g.key.resource_group.lower(), g.key.name.lower()),
        )

    def render(self, group: HostedSandboxGroup) -> dict[str, Any]:
        """The group's ARM body."""
        return render_group(group.resource, default_domain=self.default_domain)

    def _busy(self, group: HostedSandboxGroup) -> ArmError:
        return ArmError(
            409,
            "AnotherOperationInProgress",
            f"Another operation is in progress on sandbox group '{group.key.name}' "
            f"(provisioningState {group.resource.state.value}); retry when it has finished.",
            target="sandboxGroupName",
            headers={"Retry-After": "1"},
        )

    async def create_or_replace(
        self, key: ResourceKey, settings: SandboxGroupSettings
    ) -> tuple[HostedSandboxGroup, ArmOperation, bool]:
        """Create the group or replace its settings; returns it, its (finished) operation and
        whether it is new."""
        async with self._lock:
            group = self.find(key)
            if group is not None and group.deleting:
                raise self._busy(group)
            if group is not None and location_segment(group.resource.settings.location) != location_segment(
                settings.location
            ):
                raise ArmError(
                    409,
                    "InvalidResourceLocation",
                    f"The sandbox group '{key.name}' already exists in location "
                    f"'{group.resource.settings.location}'; it cannot be moved (delete it first).",
                    target="location",
                )
            if group is None and len(self._groups) >= self.max_groups:
                raise ArmError(
                    409,
                    "SandboxGroupQuotaExceeded",
                    f"This server already hosts {len(self._groups)} sandbox groups, its limit; "
                    "delete one first.",
                    target="sandboxGroupName",
                )
            created = group is None
            operation = self._start(
                ArmOperationKind.CREATE if created else ArmOperationKind.UPDATE, key, settings.location
            )
            now = datetime.now(timezone.utc)
            if group is None:
                group = HostedSandboxGroup(
                    SandboxGroupResource(key, settings, ProvisioningState.SUCCEEDED, now, now)
                )
            limits = GroupLimits(max_sandboxes=settings.max_sandbox_count or DEFAULT_MAX_SANDBOX_COUNT)
            # Replacing a group's limits keeps its sandboxes (as a PUT keeps a resource's children).
            self._runtime.create_group(group.runtime_id, limits)
            if created:
                self._groups[key.folded] = group
            else:
                group.resource.settings = settings
                group.resource.modified_at = now
            group.operation = operation
            operation.succeed()
            return group, operation, created

    async def update(
        self, group: HostedSandboxGroup, settings: SandboxGroupSettings
    ) -> tuple[HostedSandboxGroup, ArmOperation]:
        """Apply a PATCH's settings."""
        if group.deleting:
            raise self._busy(group)
        updated, operation, _ = await self.create_or_replace(group.key, settings)
        return updated, operation

    def begin_delete(self, group: HostedSandboxGroup) -> ArmOperation:
        """Start deleting ``group`` and its sandboxes; a repeated delete answers with the running one."""
        running = group.operation
        if group.deleting and running is not None and running.kind is ArmOperationKind.DELETE:
            return running
        operation = self._start(ArmOperationKind.DELETE, group.key, group.resource.settings.location)
        group.operation = operation
        group.resource.state = ProvisioningState.DELETING
        self._spawn(self._delete(group, operation))
        return operation

    async def _delete(self, group: HostedSandboxGroup, operation: ArmOperation) -> None:
        try:
            await self._runtime.delete_group(group.runtime_id)
        except Exception as exc:
            logger.exception("deleting sandbox group %s failed", group.runtime_id)
            group.resource.state = ProvisioningState.FAILED
            operation.fail(ArmError(409, "SandboxGroupOperationError", f"The delete failed: {exc}"))
            return
        if self._groups.get(group.key.folded) is group:
            del self._groups[group.key.folded]
        operation.succeed()

    async def delete(self, key: ResourceKey) -> bool:
        """Delete the group at ``key`` and wait; False if there is none."""
        group = self.find(key)
        if group is None:
            return False
        await self.begin_delete(group).wait()
        return True

    def _start(self, kind: ArmOperationKind, key: ResourceKey, location: str) -> ArmOperation:
        operation = self._operations.start(kind, key, location)
        # The operation routes render its result through this resource type's routes.
        operation.resource_type = SANDBOX_GROUPS
        return operation

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for running deletes, then delete every group left."""
        for task in list(self._tasks):
            try:
                await task
            except Exception:
                logger.exception("a sandbox-group operation failed while closing")
        for group in list(self._groups.values()):
            try:
                await self._runtime.delete_group(group.runtime_id)
            except Exception:
                logger.exception("removing sandbox group %s failed", group.runtime_id)
        self._groups.clear()
