"""The SDK's api-version ``2026-02-01-preview``: the runtime's state names as they are
(``Suspended``, ``Resuming``, ``Deleting``, ``Failed`` are SDK states), create answers 201
(the SDK takes 200 or 201 with the Sandbox), a file write 201 with a small JSON body (the SDK
ignores it); a FileInfo's ``mode`` is an octal string (``"0644"``)."""

from __future__ import annotations

from ....runtime.sandboxes.models import SandboxState
from ..versions import SandboxApiVersion
from .common import VersionWire

__all__ = ["WIRE"]

WIRE = VersionWire(
    version=SandboxApiVersion.V2026_02_01_PREVIEW,
    state_names={state: state.value for state in SandboxState},
    create_status=201,
    write_status=201,
    integer_file_mode=False,
)
"""How 2026-02-01-preview renders."""
