"""2023-11-02-preview to 2024-10-02-preview: ``scaleConfiguration`` and a flat
``dynamicPoolConfiguration{executionType, cooldownPeriodInSeconds}``; no identity, no MCP."""

from __future__ import annotations

from typing import Any

from ..model import LifecycleType, PoolResource
from ..versions import ArmApiVersion
from .common import envelope

__all__ = ["render"]


def render(resource: PoolResource, version: ArmApiVersion) -> dict[str, Any]:
    """The pool as the 2024 api-versions show it."""
    settings = resource.settings
    dynamic: dict[str, Any] = {"executionType": settings.lifecycle_type.value}
    if settings.lifecycle_type is LifecycleType.TIMED:
        dynamic["cooldownPeriodInSeconds"] = settings.cooldown_seconds
    else:
        dynamic["maxAlivePeriodInSeconds"] = settings.max_alive_seconds
    properties: dict[str, Any] = {
        "containerType": settings.container_type.value,
        "poolManagementType": "Dynamic",
        "scaleConfiguration": {
            "maxConcurrentSessions": settings.max_concurrent_sessions,
            "readySessionInstances": settings.ready_session_instances,
        },
        "dynamicPoolConfiguration": dynamic,
        "sessionNetworkConfiguration": {"status": settings.egress.value},
        "poolManagementEndpoint": resource.endpoint,
        "provisioningState": resource.state.value,
    }
    if settings.secret_names:
        properties["secrets"] = [{"name": name} for name in settings.secret_names]
    return envelope(resource, properties, identity=False)
