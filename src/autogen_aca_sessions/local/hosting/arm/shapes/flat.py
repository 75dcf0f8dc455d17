"""2023-11-02-preview to 2024-10-02-preview: ``scaleConfiguration`` and a flat
``dynamicPoolConfiguration{executionType, cooldownPeriodInSeconds}``; no identity, no MCP."""

from __future__ import annotations

from typing import Any

from ..model import PoolResource
from ..versions import ArmApiVersion
from .common import envelope, lifetime, scaled_properties

__all__ = ["render"]


def render(resource: PoolResource, version: ArmApiVersion) -> dict[str, Any]:
    """The pool as the 2024 api-versions show it."""
    properties = scaled_properties(resource, lifetime(resource.settings, "executionType"))
    return envelope(resource, properties, identity=False)
