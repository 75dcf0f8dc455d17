"""What the api-versions' session-pool bodies share: the ARM resource envelope, and the
``properties`` the 2024 and later versions have in common."""

from __future__ import annotations

from typing import Any

from ..model import LifecycleType, PoolResource, PoolSettings

__all__ = ["envelope", "iso", "lifetime", "scaled_properties"]

RESOURCE_TYPE = "Microsoft.App/sessionPools"


def iso(moment: Any) -> str:
    """An ARM timestamp (ISO 8601, UTC, ``Z``)."""
    return str(moment.isoformat().replace("+00:00", "Z"))


def envelope(resource: PoolResource, properties: dict[str, Any], *, identity: bool) -> dict[str, Any]:
    """``{id, name, type, location, tags?, identity?, systemData, properties}``."""
    settings = resource.settings
    body: dict[str, Any] = {
        "id": resource.key.resource_id,
        "name": resource.key.name,
        "type": RESOURCE_TYPE,
        "location": settings.location,
    }
    if settings.tags:
        body["tags"] = dict(settings.tags)
    if identity and settings.identity is not None:
        body["identity"] = dict(settings.identity)
    body["systemData"] = {
        "createdAt": iso(resource.created_at),
        "lastModifiedAt": iso(resource.modified_at),
    }
    body["properties"] = properties
    return body


def lifetime(settings: PoolSettings, kind_name: str) -> dict[str, Any]:
    """The lifecycle type under ``kind_name`` with the period it uses (cooldown when timed, else
    the longest life)."""
    life: dict[str, Any] = {kind_name: settings.lifecycle_type.value}
    if settings.lifecycle_type is LifecycleType.TIMED:
        life["cooldownPeriodInSeconds"] = settings.cooldown_seconds
    else:
        life["maxAlivePeriodInSeconds"] = settings.max_alive_seconds
    return life


def scaled_properties(resource: PoolResource, dynamic: dict[str, Any]) -> dict[str, Any]:
    """The ``properties`` of the 2024 and later api-versions (``scaleConfiguration``,
    ``sessionNetworkConfiguration``, ``secrets``), with ``dynamic`` as the
    ``dynamicPoolConfiguration`` each family shapes its own way."""
    settings = resource.settings
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
    return properties
