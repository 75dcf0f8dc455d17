"""The spec's api-version ``2026-09-01-preview``: its ``SandboxState`` is ``Running, Stopped,
Idle, Creating, Stopping, StopFailed``, so the runtime states it lacks are named by their
nearest (a suspended sandbox is ``Stopped`` with ``stateDetails.stoppedReason``; one resuming
is ``Creating``; one being deleted is ``Stopping``; one that failed is ``StopFailed``). Create
answers 201, a file write 201 ``{success, bytesWritten}``; a FileInfo's ``mode`` is an int32.

Where this server still answers otherwise than the spec (known, kept on purpose):

- ``POST {s}/stop`` answers the stopped Sandbox, not a Snapshot: a stop here takes no snapshot
  (Memory mode freezes the processes in place), and a Snapshot body would carry an ``id`` that
  names nothing ``GET {g}/snapshots/{id}`` knows.
- ``stats.cpu`` has the SDK's ``usageNanoCores``/``usageCoreNanoSeconds`` only, not the spec's
  ``/proc/stat``-style ``user``/``system``/``idle``/``loadAvg*`` of a VM (a sandbox is a process
  tree on a shared kernel: those figures would be the host's).
- Error bodies carry ProblemDetails' ``type``, ``title``, ``status`` and ``detail``, not
  ``instance``.
"""

from __future__ import annotations

from ....runtime.sandboxes.models import SandboxState
from ..versions import SandboxApiVersion
from .common import VersionWire

__all__ = ["WIRE"]

WIRE = VersionWire(
    version=SandboxApiVersion.V2026_09_01_PREVIEW,
    state_names={
        SandboxState.CREATING: "Creating",
        SandboxState.RUNNING: "Running",
        SandboxState.STOPPING: "Stopping",
        SandboxState.SUSPENDED: "Stopped",
        SandboxState.STOPPED: "Stopped",
        SandboxState.RESUMING: "Creating",
        SandboxState.DELETING: "Stopping",
        SandboxState.FAILED: "StopFailed",
    },
    create_status=201,
    write_status=201,
    integer_file_mode=True,
)
"""How 2026-09-01-preview renders."""
