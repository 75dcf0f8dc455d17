"""What every api-version's session-pool body shares: the ARM resource envelope."""

from __future__ import annotations

from typing import Any

from ..model import PoolResource

__all__ = ["envelope", "iso"]

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
