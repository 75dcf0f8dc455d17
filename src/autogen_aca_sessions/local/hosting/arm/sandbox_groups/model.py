"""What a sandbox group is at the management plane: its settings, name rules, body reader and
rendering (``Microsoft.App/sandboxGroups``, reference ``aca-sandboxes.md`` section 2).

The sources disagree on the body (the 2026-02-01-preview TypeSpec has only
``provisioningState``, the 2026-07-01 one ``environmentId``/``defaultDomain``, the Bicep
quickstart ``maxSandboxCount`` and resource defaults), so ``properties`` is stored verbatim and
echoed; the server reads only what it can act on (``maxSandboxCount``) and sets the read-only
``provisioningState`` itself.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import ArmError
from ..model import ProvisioningState, ResourceKey
from ..shapes.common import iso

__all__ = [
    "MAX_GROUP_PROPERTIES_BYTES",
    "RESOURCE_TYPE",
    "SandboxGroupApiVersion",
    "SandboxGroupResource",
    "SandboxGroupSettings",
    "group_name_problem",
    "group_resource_id",
    "lookup_group_version",
    "read_group_patch",
    "read_group_put",
    "render_group",
]

RESOURCE_TYPE = "Microsoft.App/sandboxGroups"

MAX_GROUP_PROPERTIES_BYTES = 64 * 1024
"""Largest ``properties``/``tags``/``identity`` a group stores (as JSON); above it 400, so a
body built to bloat memory is refused instead of kept for the server's lifetime."""

MAX_SANDBOX_COUNT_LIMIT = 10_000
"""The most ``maxSandboxCount`` a group may ask for."""


class SandboxGroupApiVersion(enum.Enum):
    """The management api-versions of ``Microsoft.App/sandboxGroups`` served (same body for both)."""

    V2026_02_01_PREVIEW = "2026-02-01-preview"
    """What the SDK ``azure-containerapps-sandbox`` 0.1.0b4 sends."""
    V2026_07_01 = "2026-07-01"
    """The ARM TypeSpec ``Microsoft.App/ContainerApps/SandboxGroup.tsp``."""


def lookup_group_version(value: str) -> SandboxGroupApiVersion | None:
    """The version named ``value`` (case-insensitive, surrounding blanks ignored)."""
    folded = value.strip().lower()
    return next((v for v in SandboxGroupApiVersion if v.value == folded), None)


# The union of the two TypeSpec patterns (2026-07-01: ^(?![.-])[A-Za-z0-9-]{1,32}$;
# 2026-02-01-preview: ^[a-z][a-z0-9]{2,62}$): what either accepts is accepted, nothing that
# could escape a path segment or a header is.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")


def group_name_problem(name: str) -> str | None:
    """What is wrong with a sandbox-group name, or None when it is valid."""
    if not 1 <= len(name) <= 63:
        return f"must be 1 to 63 characters long (it has {len(name)})"
    if not _GROUP_NAME.fullmatch(name):
        return "must start with a letter or digit and contain only letters, digits and hyphens"
    return None


def group_resource_id(key: ResourceKey) -> str:
    """``/subscriptions/.../resourceGroups/.../providers/Microsoft.App/sandboxGroups/<name>``."""
    return (
        f"/subscriptions/{key.subscription}/resourceGroups/{key.resource_group}"
        f"/providers/{RESOURCE_TYPE}/{key.name}"
    )


@dataclass(frozen=True)
class SandboxGroupSettings:
    """Everything a sandbox group is made from; one value per group, replaced whole on change."""

    location: str = "local"
    """The Azure region named by the body (echoed; the local server has one place)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Resource tags (echoed)."""
    identity: dict[str, Any] | None = None
    """The ``identity`` object as sent (echoed; the local server has no managed identities)."""
    properties: dict[str, Any] = field(default_factory=dict)
    """``properties`` as sent, without the read-only ``provisioningState`` (echoed)."""
    max_sandbox_count: int | None = None
    """``properties.maxSandboxCount``: the most sandboxes at once (None: the server's default)."""


@dataclass
class SandboxGroupResource:
    """A sandbox group as the management plane shows it."""

    key: ResourceKey
    """Where it lives."""
    settings: SandboxGroupSettings
    """What it is."""
    state: ProvisioningState
    """Its ``provisioningState``."""
    created_at: datetime
    """When it was first created (``systemData.createdAt``)."""
    modified_at: datetime
    """When it last changed (``systemData.lastModifiedAt``)."""
    principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """The ``identity.principalId`` shown when a system-assigned identity is asked for (the
    docs read it back; nothing local uses it)."""


def _bad(message: str, target: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent", message, target=target)


def _object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = next((v for k, v in body.items() if k.lower() == name.lower()), None)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"'{name}' must be a JSON object, not {type(value).__name__}.", name)
    if len(json.dumps(value)) > MAX_GROUP_PROPERTIES_BYTES:
        raise _bad(f"'{name}' is larger than {MAX_GROUP_PROPERTIES_BYTES} bytes as JSON.", name)
    return value


def _tags(body: dict[str, Any]) -> dict[str, str] | None:
    tags = _object(body, "tags")
    if tags is None:
        return None
    if len(tags) > 50 or not all(
        isinstance(v, str) and len(k) <= 512 and len(v) <= 256 for k, v in tags.items()
    ):
        raise _bad(
            "'tags' must hold at most 50 string values (names up to 512, values up to 256 characters).",
            "tags",
        )
    return {str(k): str(v) for k, v in tags.items()}


def _identity(body: dict[str, Any]) -> dict[str, Any] | None:
    identity = _object(body, "identity")
    if identity is None:
        return None
    kind = identity.get("type")
    allowed = (
        "None",
        "SystemAssigned",
        "UserAssigned",
        "SystemAssigned,UserAssigned",
        "SystemAssigned, UserAssigned",
    )
    if not isinstance(kind, str) or kind.replace(" ", "").lower() not in {
        a.replace(" ", "").lower() for a in allowed
    }:
        raise _bad(
            "'identity.type' must be one of None, SystemAssigned, UserAssigned, SystemAssigned,UserAssigned.",
            "identity.type",
        )
    return identity


def _properties(body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    properties = _object(body, "properties") or {}
    stored = {k: v for k, v in properties.items() if k.lower() != "provisioningstate"}
    raw = next((v for k, v in stored.items() if k.lower() == "maxsandboxcount"), None)
    if raw is None:
        return stored, None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_SANDBOX_COUNT_LIMIT:
        raise _bad(
            f"'properties.maxSandboxCount' must be an integer from 1 to {MAX_SANDBOX_COUNT_LIMIT}, "
            f"not {str(raw)[:40]!r}.",
            "properties.maxSandboxCount",
        )
    return stored, raw


def _location(body: dict[str, Any]) -> str:
    location = next((v for k, v in body.items() if k.lower() == "location"), None)
    if not isinstance(location, str) or not location.strip():
        raise _bad("'location' is required (a region name such as 'eastus2').", "location")
    # An unknown region is 400 on Azure; here any ASCII region-like name is echoed, nothing that
    # could break a header or a URL is.
    if len(location) > 64 or not all(ch.isascii() and (ch.isalnum() or ch in " -") for ch in location):
        raise _bad(
            f"'location' {location[:80]!r} is not a region name (ASCII letters, digits, blanks, '-').",
            "location",
        )
    return location


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object (the sandbox group resource).", "body")
    return body


def read_group_put(body: Any) -> SandboxGroupSettings:
    """The settings a PUT body describes (400 ``InvalidRequestContent`` for what cannot be)."""
    body = _require_object(body)
    properties, max_count = _properties(body)
    return SandboxGroupSettings(
        location=_location(body),
        tags=_tags(body) or {},
        identity=_identity(body),
        properties=properties,
        max_sandbox_count=max_count,
    )


def read_group_patch(body: Any, current: SandboxGroupSettings) -> SandboxGroupSettings:
    """``current`` with what a PATCH body changes: ``tags`` and ``identity`` replaced,
    ``properties`` merged key by key; ``environmentId`` may be set once, then not changed (409)."""
    body = _require_object(body)
    tags = _tags(body)
    identity = _identity(body)
    changes, _ = _properties(body)
    properties = dict(current.properties)
    for name, value in changes.items():
        existing = next((k for k in properties if k.lower() == name.lower()), None)
        if (
            existing is not None
            and name.lower() == "environmentid"
            and properties[existing] not in (None, value)
        ):
            raise ArmError(
                409,
                "EnvironmentIdImmutable",
                "'properties.environmentId' is set already and cannot be changed; "
                "create a new sandbox group.",
                target="properties.environmentId",
            )
        if existing is not None:
            del properties[existing]
        properties[name] = value
    if len(json.dumps(properties)) > MAX_GROUP_PROPERTIES_BYTES:
        raise _bad(
            f"'properties' would be larger than {MAX_GROUP_PROPERTIES_BYTES} bytes as JSON.", "properties"
        )
    _, max_count = _properties({"properties": properties})
    return SandboxGroupSettings(
        location=current.location,
        tags=tags if tags is not None else dict(current.tags),
        identity=identity if identity is not None else current.identity,
        properties=properties,
        max_sandbox_count=max_count,
    )


def render_group(resource: SandboxGroupResource, *, default_domain: str) -> dict[str, Any]:
    """The ARM resource body: ``{id, name, type, location, tags, identity?, systemData,
    properties{..., provisioningState, defaultDomain}}`` (one shape for both api-versions)."""
    settings = resource.settings
    body: dict[str, Any] = {
        "id": group_resource_id(resource.key),
        "name": resource.key.name,
        "type": RESOURCE_TYPE,
        "location": settings.location,
        "tags": dict(settings.tags),
    }
    if settings.identity is not None:
        identity = dict(settings.identity)
        if "system" in str(identity.get("type", "")).lower():
            identity.setdefault("principalId", resource.principal_id)
            identity.setdefault("tenantId", "00000000-0000-0000-0000-000000000000")
        body["identity"] = identity
    body["systemData"] = {"createdAt": iso(resource.created_at), "lastModifiedAt": iso(resource.modified_at)}
    properties = dict(settings.properties)
    properties.setdefault("defaultDomain", default_domain)
    properties["provisioningState"] = resource.state.value
    body["properties"] = properties
    return body
