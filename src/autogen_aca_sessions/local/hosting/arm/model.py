"""What a session pool is at the management plane: its settings and its ARM resource state.

:class:`PoolSettings` is the one value a pool is made from, whichever api-version's body (or
the Python API) described it; the ``shapes`` modules parse bodies into it and render it back.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "DEFAULT_COOLDOWN_SECONDS",
    "DEFAULT_MAX_ALIVE_SECONDS",
    "DEFAULT_MAX_CONCURRENT_SESSIONS",
    "DEFAULT_READY_SESSION_INSTANCES",
    "MAX_CONCURRENT_SESSIONS_LIMIT",
    "MAX_IDENTITY_JSON_CHARS",
    "MAX_MANAGED_IDENTITIES",
    "MAX_MANAGED_IDENTITY_CHARS",
    "MAX_SECRETS",
    "MAX_SECRET_NAME_CHARS",
    "MAX_SECRET_VALUE_CHARS",
    "MAX_TAGS",
    "MAX_TAG_NAME_CHARS",
    "MAX_TAG_VALUE_CHARS",
    "SUPPORTED_CONTAINER_TYPES",
    "ContainerType",
    "EgressStatus",
    "IdentityLifecycle",
    "LifecycleType",
    "ManagedIdentitySetting",
    "PoolManagementType",
    "PoolSecret",
    "PoolSettings",
    "ProvisioningState",
    "ResourceKey",
    "location_problem",
    "name_problem",
    "resource_group_problem",
    "subscription_problem",
]

DEFAULT_MAX_CONCURRENT_SESSIONS = 10
"""``maxConcurrentSessions`` when a body has none (the az CLI's default)."""
DEFAULT_READY_SESSION_INSTANCES = 1
"""``readySessionInstances`` when a body has none: one warm kernel, so the first session of a
pool starts at once without every idle pool of a many-tenant server holding several."""
DEFAULT_COOLDOWN_SECONDS = 300
"""``cooldownPeriodInSeconds`` when a Timed body has none (the az CLI's default)."""
DEFAULT_MAX_ALIVE_SECONDS = 3600
"""``maxAlivePeriodInSeconds`` when an OnContainerExit body has none (the az CLI's default)."""
COOLDOWN_RANGE = (300, 3600)
"""Allowed cooldown (and max-alive) periods, in seconds (the docs' range)."""
MAX_CONCURRENT_SESSIONS_LIMIT = 600
"""The most ``maxConcurrentSessions`` a pool may ask for (the docs' limit)."""


# What one pool may store of the echoed, free-form parts of its body. Without caps a 4 MB body
# of a million empty objects became hundreds of MiB of Python objects held for the pool's life.
MAX_MANAGED_IDENTITIES = 20
"""Most ``managedIdentitySettings`` entries."""
MAX_MANAGED_IDENTITY_CHARS = 512
"""Longest ``managedIdentitySettings[].identity`` (``system`` or a user-assigned identity's resource id)."""
MAX_IDENTITY_JSON_CHARS = 16 * 1024
"""Largest ``identity`` object, as JSON text."""
MAX_TAGS = 50
"""Most resource tags (Azure's limit)."""
MAX_TAG_NAME_CHARS = 512
"""Longest tag name (Azure's limit)."""
MAX_TAG_VALUE_CHARS = 256
"""Longest tag value (Azure's limit)."""
MAX_SECRETS = 100
"""Most ``secrets`` entries."""
MAX_SECRET_NAME_CHARS = 253
"""Longest secret name."""
MAX_SECRET_VALUE_CHARS = 8 * 1024
"""Longest secret value."""


class ContainerType(enum.Enum):
    """``properties.containerType``."""

    PYTHON_LTS = "PythonLTS"
    SHELL = "Shell"
    CUSTOM_CONTAINER = "CustomContainer"
    NODE_LTS = "NodeLTS"
    GPU_BASE = "GpuBase"
    CSHARP_LTS = "CsharpLTS"


SUPPORTED_CONTAINER_TYPES = (ContainerType.PYTHON_LTS, ContainerType.SHELL)
"""The container types the local server can run (the others need images it does not have)."""


class PoolManagementType(enum.Enum):
    """``properties.poolManagementType``; only ``Dynamic`` pools exist locally."""

    DYNAMIC = "Dynamic"
    MANUAL = "Manual"


class LifecycleType(enum.Enum):
    """How sessions end: ``Timed`` (idle cooldown) or ``OnContainerExit`` (max alive period)."""

    TIMED = "Timed"
    ON_CONTAINER_EXIT = "OnContainerExit"


class EgressStatus(enum.Enum):
    """``sessionNetworkConfiguration.status``."""

    ENABLED = "EgressEnabled"
    DISABLED = "EgressDisabled"


class ProvisioningState(enum.Enum):
    """``properties.provisioningState``."""

    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    DELETING = "Deleting"


class IdentityLifecycle(enum.Enum):
    """``managedIdentitySettings[].lifecycle``: when the identity is available to the session."""

    NONE = "None"
    MAIN = "Main"
    INIT = "Init"
    ALL = "All"


@dataclass(frozen=True)
class ManagedIdentitySetting:
    """One ``managedIdentitySettings`` entry (echoed; the local server has no managed identities)."""

    identity: str
    """``system`` or the resource id of a user-assigned identity."""
    lifecycle: IdentityLifecycle = IdentityLifecycle.MAIN
    """When the identity is available."""


@dataclass(frozen=True)
class PoolSecret:
    """One ``properties.secrets`` entry: kept as Azure keeps it, never shown (``x-ms-secret``)."""

    name: str
    """The secret's name (shown in GET, as Azure does)."""
    value: str = field(repr=False)
    """The secret's value: write-only, never rendered, logged or repr'd."""


@dataclass(frozen=True)
class PoolSettings:
    """Everything a session pool is made from; one value per pool, replaced whole on change."""

    location: str = "local"
    """The Azure region named by the body (echoed; the local server has one place)."""
    container_type: ContainerType = ContainerType.PYTHON_LTS
    """What sessions run: a Jupyter kernel (``PythonLTS``) or bash commands (``Shell``)."""
    max_concurrent_sessions: int = DEFAULT_MAX_CONCURRENT_SESSIONS
    """Most sessions at once; one more gets the data plane's 404."""
    ready_session_instances: int = DEFAULT_READY_SESSION_INSTANCES
    """Kernels kept started ahead of need (Python pools)."""
    lifecycle_type: LifecycleType = LifecycleType.TIMED
    """Whether sessions end after ``cooldown_seconds`` idle or ``max_alive_seconds`` after creation."""
    cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    """Idle time after which a Timed session is deleted."""
    max_alive_seconds: int = DEFAULT_MAX_ALIVE_SECONDS
    """Lifetime of an OnContainerExit session."""
    egress: EgressStatus = EgressStatus.DISABLED
    """Whether session code may reach the network."""
    mcp_enabled: bool = False
    """Whether the pool's MCP server (``{endpoint}/mcp``) is on."""
    mcp_api_key_disabled: bool = False
    """``isMcpServerApiKeyDisabled`` (echoed)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Resource tags (echoed)."""
    secrets: tuple[PoolSecret, ...] = ()
    """``properties.secrets`` (also read as ``sessionPoolSecrets``): names shown, values never."""
    identity: dict[str, Any] | None = None
    """The ``identity`` object as sent, at most :data:`MAX_IDENTITY_JSON_CHARS` of JSON (echoed;
    the local server has no managed identities)."""
    managed_identity_settings: tuple[ManagedIdentitySetting, ...] | None = None
    """``properties.managedIdentitySettings``, each entry checked (echoed)."""

    @property
    def secret_names(self) -> tuple[str, ...]:
        """The names of :attr:`secrets`, in order."""
        return tuple(secret.name for secret in self.secrets)

    @property
    def session_lifetime_note(self) -> str:
        """How sessions of this pool end, in words (for logs and the CLI)."""
        if self.lifecycle_type is LifecycleType.TIMED:
            return f"deleted after {self.cooldown_seconds} s idle"
        return f"deleted {self.max_alive_seconds} s after creation"


@dataclass(frozen=True)
class ResourceKey:
    """Where a pool lives in ARM: subscription, resource group, name (compared case-insensitively)."""

    subscription: str
    """The subscription id (a GUID)."""
    resource_group: str
    """The resource group name."""
    name: str
    """The pool name."""

    @property
    def folded(self) -> tuple[str, str, str]:
        """The key ARM compares names by (case-insensitive)."""
        return (self.subscription.lower(), self.resource_group.lower(), self.name.lower())

    @property
    def resource_id(self) -> str:
        """``/subscriptions/.../providers/Microsoft.App/sessionPools/<name>``."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.App/sessionPools/{self.name}"
        )

    @property
    def data_plane_path(self) -> str:
        """The pool endpoint's path (``poolManagementEndpoint`` without the origin)."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/sessionPools/{self.name}"
        )


@dataclass
class PoolResource:
    """A pool as the management plane shows it."""

    key: ResourceKey
    """Where it lives."""
    settings: PoolSettings
    """What it is."""
    endpoint: str
    """Its ``poolManagementEndpoint``."""
    state: ProvisioningState
    """Its ``provisioningState``."""
    created_at: datetime
    """When it was first created (``systemData.createdAt``)."""
    modified_at: datetime
    """When it last changed (``systemData.lastModifiedAt``)."""


# Names: the spec's pattern, plus single inner hyphens, because the docs and the az CLI create
# pools named like 'my-session-pool' and Azure accepts them (see docs/design.md).
_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]+$")
# Regions as Azure names them: a name (eastus, westeurope2, local) or its display form
# ("East US 2"). ASCII only: the location ends up in operation URLs and their headers.
_LOCATION = re.compile(r"^[A-Za-z][A-Za-z0-9 ]{0,63}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def name_problem(name: str) -> str | None:
    """What is wrong with a session-pool name, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return f"must be 3 to 63 characters long (it has {len(name)})"
    if not _NAME.fullmatch(name):
        return (
            "must start with a lower-case letter and contain only lower-case letters, digits and "
            "single hyphens between them (pattern ^[a-z][a-z0-9]*$, hyphens as the az CLI allows)"
        )
    return None


def resource_group_problem(name: str) -> str | None:
    """What is wrong with a resource-group name, or None."""
    if not 1 <= len(name) <= 90:
        return f"must be 1 to 90 characters long (it has {len(name)})"
    if not _RESOURCE_GROUP.fullmatch(name) or name.endswith("."):
        return "may contain letters, digits, '-', '_', '.', '(' and ')' and must not end with '.'"
    return None


def subscription_problem(value: str) -> str | None:
    """What is wrong with a subscription id, or None."""
    if not _GUID.fullmatch(value):
        return "must be a GUID such as 00000000-0000-0000-0000-000000000000"
    return None


def location_problem(location: str) -> str | None:
    """What is wrong with a ``location``, or None: the local server serves any Azure-style region
    name (ASCII letters, digits and spaces, starting with a letter, at most 64 characters)."""
    if not _LOCATION.fullmatch(location):
        return (
            "is not a region this server serves: it serves any Azure-style region name (ASCII "
            "letters, digits and spaces, starting with a letter, at most 64 characters, such as "
            "'eastus', 'East US 2' or 'local')"
        )
    return None
