"""The ARM management plane of the local server: ``Microsoft.App/sessionPools``.

``versions`` lists the api-versions, ``shapes`` reads and renders bodies per version family,
``model`` holds the pool settings and name rules, ``operations`` the long-running operations,
``routes`` the HTTP layer, ``errors`` ARM's error shape. ``LocalSessionsServer``
(``local/hosting/server.py``) hosts the pools.
"""

from __future__ import annotations

from .errors import ArmError
from .model import ContainerType, EgressStatus, LifecycleType, PoolSettings, ProvisioningState, ResourceKey
from .versions import ARM_API_VERSIONS, ArmApiVersion, lookup_arm_version

__all__ = [
    "ARM_API_VERSIONS",
    "ArmApiVersion",
    "ArmError",
    "ContainerType",
    "EgressStatus",
    "LifecycleType",
    "PoolSettings",
    "ProvisioningState",
    "ResourceKey",
    "lookup_arm_version",
]
