"""Long-running ARM operations: what ``Azure-AsyncOperation`` and ``Location`` URLs point at.

A PUT, PATCH or DELETE of a pool starts an :class:`ArmOperation`; its status resource
(``.../locations/<loc>/operationStatuses/<id>``) reports ``InProgress`` then ``Succeeded`` or
``Failed`` (the ``OperationStatusResult`` shape), and its result URL
(``.../operationResults/<id>``) answers 202 while it runs, then 204 for a delete or 200 with the
pool for an update: what ``ARMPolling`` and the az CLI's ``poll_status``/``poll_results`` expect.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import ArmError, arm_error_body
from .model import ResourceKey
from .shapes.common import iso

__all__ = ["ArmOperation", "ArmOperationKind", "ArmOperationStatus", "ArmOperationStore", "location_segment"]


class ArmOperationKind(enum.Enum):
    """What the operation does to its pool."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class ArmOperationStatus(enum.Enum):
    """``status`` of the operation-status resource."""

    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass
class ArmOperation:
    """One long-running ARM operation on one pool (not the data plane's ``Operation``, which names
    what a request does)."""

    kind: ArmOperationKind
    """Create, update or delete."""
    key: ResourceKey
    """The pool it works on."""
    location: str
    """The region segment of its URLs (the pool's location, lower-cased, without blanks)."""
    resource_type: str = "sessionpools"
    """The folded ``Microsoft.App`` resource type it works on (whose routes render its result)."""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """Its id (the last segment of its URLs)."""
    status: ArmOperationStatus = ArmOperationStatus.IN_PROGRESS
    """Where it is."""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    """When it started."""
    ended_at: datetime | None = None
    """When it finished."""
    error: ArmError | None = None
    """Why it failed."""
    _finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def done(self) -> bool:
        """Whether it reached a terminal status."""
        return self.status is not ArmOperationStatus.IN_PROGRESS

    def succeed(self) -> None:
        """Mark it ``Succeeded``."""
        self.status = ArmOperationStatus.SUCCEEDED
        self.ended_at = datetime.now(timezone.utc)
        self._finished.set()

    def fail(self, error: ArmError) -> None:
        """Mark it ``Failed`` with ``error``."""
        self.status = ArmOperationStatus.FAILED
        self.error = error
        self.ended_at = datetime.now(timezone.utc)
        self._finished.set()

    async def wait(self) -> None:
        """Wait until it reached a terminal status."""
        await self._finished.wait()

    def path(self, collection: str) -> str:
        """``/subscriptions/<sub>/providers/Microsoft.App/locations/<loc>/<collection>/<id>``."""
        return (
            f"/subscriptions/{self.key.subscription}/providers/Microsoft.App/locations/{self.location}"
            f"/{collection}/{self.id}"
        )

    def status_body(self) -> dict[str, Any]:
        """The ``OperationStatusResult`` body."""
        body: dict[str, Any] = {
            "id": self.path("operationStatuses"),
            "name": self.id,
            "status": self.status.value,
            "startTime": iso(self.started_at),
        }
        if self.ended_at is not None:
            body["endTime"] = iso(self.ended_at)
            body["percentComplete"] = 100.0
        if self.error is not None:
            body["error"] = arm_error_body(self.error)["error"]
        return body


def location_segment(location: str) -> str:
    """A region name as ARM puts it in URLs (``East US`` -> ``eastus``); ASCII letters and digits
    only, whatever ``location`` holds, since it ends up in headers."""
    folded = "".join(ch for ch in location.lower() if ch.isascii() and ch.isalnum())
    return folded or "local"


class ArmOperationStore:
    """The operations of a server; the oldest finished ones are forgotten past ``capacity``."""

    def __init__(self, capacity: int = 2000) -> None:
        self._operations: OrderedDict[str, ArmOperation] = OrderedDict()
        self._capacity = capacity

    def start(self, kind: ArmOperationKind, key: ResourceKey, location: str) -> ArmOperation:
        """Record a new in-progress operation."""
        operation = ArmOperation(kind, key, location_segment(location))
        self._operations[operation.id] = operation
        while len(self._operations) > self._capacity:
            oldest = next((k for k, op in self._operations.items() if op.done), None)
            if oldest is None:
                break
            del self._operations[oldest]
        return operation

    def get(self, subscription: str, operation_id: str) -> ArmOperation | None:
        """The operation ``operation_id`` of ``subscription`` (another subscription's is not found)."""
        operation = self._operations.get(operation_id.lower())
        if operation is None or operation.key.subscription.lower() != subscription.lower():
            return None
        return operation
