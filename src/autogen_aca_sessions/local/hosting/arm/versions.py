"""The ARM api-versions of ``Microsoft.App/sessionPools`` the local server serves.

Each version belongs to one body-shape family (one module in ``shapes/``): what changes between
versions is where the scale and lifecycle settings sit and whether MCP fields exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ARM_API_VERSIONS", "ArmApiVersion", "BodyShape", "lookup_arm_version"]


class BodyShape(enum.Enum):
    """The families of session-pool bodies."""

    SEED = "2023-08"
    """2023-08-01-preview (the seed document): ``maxConcurrentSessions`` directly under
    ``properties``, ``dynamicPoolConfiguration{poolType, executionType, coolDownPeriodInSecond}``."""
    FLAT = "2024"
    """2023-11-02-preview to 2024-10-02-preview: ``scaleConfiguration``, ``containerType`` and a flat
    ``dynamicPoolConfiguration{executionType, cooldownPeriodInSeconds}``."""
    LIFECYCLE = "2025"
    """2025-01-01 and later: ``dynamicPoolConfiguration.lifecycleConfiguration``."""


@dataclass(frozen=True)
class ArmApiVersion:
    """What one management api-version has."""

    name: str
    """The api-version exactly as ARM spells it."""
    shape: BodyShape
    """Its body family."""
    mcp: bool
    """``mcpServerSettings`` is rendered and the MCP credential actions exist (2025-02-02-preview,
    which every MCP doc uses although its spec lacks MCP, and 2025-10-02-preview)."""


ARM_API_VERSIONS: dict[str, ArmApiVersion] = {
    v.name: v
    for v in (
        ArmApiVersion("2023-08-01-preview", BodyShape.SEED, False),
        ArmApiVersion("2023-11-02-preview", BodyShape.FLAT, False),
        ArmApiVersion("2024-02-02-preview", BodyShape.FLAT, False),
        ArmApiVersion("2024-08-02-preview", BodyShape.FLAT, False),
        ArmApiVersion("2024-10-02-preview", BodyShape.FLAT, False),
        ArmApiVersion("2025-01-01", BodyShape.LIFECYCLE, False),
        ArmApiVersion("2025-02-02-preview", BodyShape.LIFECYCLE, True),
        ArmApiVersion("2025-07-01", BodyShape.LIFECYCLE, False),
        ArmApiVersion("2025-10-02-preview", BodyShape.LIFECYCLE, True),
        ArmApiVersion("2026-01-01", BodyShape.LIFECYCLE, False),
        # azure-mgmt-appcontainers 5.1's default; its spec is not published, so it is served
        # with the 2026-01-01 shape.
        ArmApiVersion("2026-07-01", BodyShape.LIFECYCLE, False),
    )
}
"""Every management api-version served, keyed by its exact name."""


def lookup_arm_version(value: str) -> ArmApiVersion | None:
    """The version named ``value`` (case-insensitive, surrounding blanks ignored)."""
    return ARM_API_VERSIONS.get(value.strip().lower())
