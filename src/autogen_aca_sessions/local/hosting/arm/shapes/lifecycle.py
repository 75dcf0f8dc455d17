"""2025-01-01 and later: ``dynamicPoolConfiguration.lifecycleConfiguration``, ``identity`` and
``managedIdentitySettings``; ``mcpServerSettings`` on the api-versions that have MCP."""

from __future__ import annotations

from typing import Any

from ..model import PoolResource
from ..versions import ArmApiVersion
from .common import envelope, lifetime, scaled_properties

__all__ = ["render"]


def render(resource: PoolResource, version: ArmApiVersion) -> dict[str, Any]:
    """The pool as the 2025 and 2026 api-versions show it."""
    settings = resource.settings
    life = lifetime(settings, "lifecycleType")
    properties = scaled_properties(resource, {"lifecycleConfiguration": life})
    if settings.managed_identity_settings is not None:
        properties["managedIdentitySettings"] = [
            {"identity": entry.identity, "lifecycle": entry.lifecycle.value}
            for entry in settings.managed_identity_settings
        ]
    if version.mcp:
        mcp: dict[str, Any] = {
            "isMcpServerEnabled": settings.mcp_enabled,
            "isMcpServerApiKeyDisabled": settings.mcp_api_key_disabled,
        }
        if settings.mcp_enabled:
            mcp["mcpServerEndpoint"] = resource.endpoint + "/mcp"
        properties["mcpServerSettings"] = mcp
    return envelope(resource, properties, identity=True)
