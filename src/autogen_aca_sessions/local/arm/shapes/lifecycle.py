"""2025-01-01 and later: ``dynamicPoolConfiguration.lifecycleConfiguration``, ``identity`` and
``managedIdentitySettings``; ``mcpServerSettings`` on the api-versions that have MCP."""

from __future__ import annotations

from typing import Any

from ..model import LifecycleType, PoolResource
from ..versions import ArmApiVersion
from .common import envelope

__all__ = ["render"]


def render(resource: PoolResource, version: ArmApiVersion) -> dict[str, Any]:
    """The pool as the 2025 and 2026 api-versions show it."""
    settings = resource.settings
    life: dict[str, Any] = {"lifecycleType": settings.lifecycle_type.value}
    if settings.lifecycle_type is LifecycleType.TIMED:
        life["cooldownPeriodInSeconds"] = settings.cooldown_seconds
    else:
        life["maxAlivePeriodInSeconds"] = settings.max_alive_seconds
    properties: dict[str, Any] = {
        "containerType": settings.container_type.value,
        "poolManagementType": "Dynamic",
        "scaleConfiguration": {
            "maxConcurrentSessions": settings.max_concurrent_sessions,
            "readySessionInstances": settings.ready_session_instances,
        },
        "dynamicPoolConfiguration": {"lifecycleConfiguration": life},
        "sessionNetworkConfiguration": {"status": settings.egress.value},
        "poolManagementEndpoint": resource.endpoint,
        "provisioningState": resource.state.value,
    }
    if settings.secret_names:
        properties["secrets"] = [{"name": name} for name in settings.secret_names]
    if settings.managed_identity_settings is not None:
        properties["managedIdentitySettings"] = list(settings.managed_identity_settings)
    if version.mcp:
        mcp: dict[str, Any] = {
            "isMcpServerEnabled": settings.mcp_enabled,
            "isMcpServerApiKeyDisabled": settings.mcp_api_key_disabled,
        }
        if settings.mcp_enabled:
            mcp["mcpServerEndpoint"] = resource.endpoint + "/mcp"
        properties["mcpServerSettings"] = mcp
    return envelope(resource, properties, identity=True)
