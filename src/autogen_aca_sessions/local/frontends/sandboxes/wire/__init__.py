"""Wire formats of the Sandboxes data plane: ``common`` (readers accepting both shapes, superset
renderers) and one module per api-version (``v2026_02_01_preview``, ``v2026_09_01_preview``)."""

from __future__ import annotations

from ..versions import SandboxApiVersion
from . import v2026_02_01_preview, v2026_09_01_preview
from .common import VersionWire

__all__ = ["wire_for"]

_WIRES = {
    SandboxApiVersion.V2026_02_01_PREVIEW: v2026_02_01_preview.WIRE,
    SandboxApiVersion.V2026_09_01_PREVIEW: v2026_09_01_preview.WIRE,
}


def wire_for(version: SandboxApiVersion) -> VersionWire:
    """The wire of ``version``."""
    return _WIRES[version]
