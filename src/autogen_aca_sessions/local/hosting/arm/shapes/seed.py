"""2023-08-01-preview, the seed document's shape.

``maxConcurrentSessions`` and the pool ``name`` sit directly under ``properties``;
``dynamicPoolConfiguration`` holds ``poolType`` (``JupyterPython``), ``executionType`` and the
seed's spelling ``coolDownPeriodInSecond``.
"""

from __future__ import annotations

from typing import Any

from ..model import ContainerType, LifecycleType, PoolResource
from ..versions import ArmApiVersion
from .common import envelope

__all__ = ["render"]


def render(resource: PoolResource, version: ArmApiVersion) -> dict[str, Any]:
    """The pool as 2023-08-01-preview shows it."""
    settings = resource.settings
    dynamic: dict[str, Any] = {
        # Shell did not exist then; it is named so that a Shell pool is not shown as Python.
        "poolType": "JupyterPython"
        if settings.container_type is ContainerType.PYTHON_LTS
        else settings.container_type.value,
        "executionType": settings.lifecycle_type.value,
    }
    if settings.lifecycle_type is LifecycleType.TIMED:
        dynamic["coolDownPeriodInSecond"] = settings.cooldown_seconds
    else:
        dynamic["maxAlivePeriodInSeconds"] = settings.max_alive_seconds
    properties: dict[str, Any] = {
        "poolManagementType": "Dynamic",
        "maxConcurrentSessions": settings.max_concurrent_sessions,
        "name": resource.key.name,
        "dynamicPoolConfiguration": dynamic,
        "poolManagementEndpoint": resource.endpoint,
        "provisioningState": resource.state.value,
    }
    return envelope(resource, properties, identity=False)
