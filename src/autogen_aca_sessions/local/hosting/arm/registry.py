"""What the management routes need from whoever hosts the pools: the seam between ``arm/`` and
the server, so that the routes import nothing of the server (no import circle) and a test or a
second host can serve the same routes."""

from __future__ import annotations

from typing import Protocol, TypeVar

from .model import PoolResource, PoolSettings, ResourceKey
from .operations import ArmOperation, ArmOperationStore

__all__ = ["ManagedPool", "P", "PoolRegistry"]


class ManagedPool(Protocol):
    """One pool as the management plane reads and changes it."""

    @property
    def settings(self) -> PoolSettings:
        """Its current settings."""
        ...

    def resource(self) -> PoolResource:
        """The pool as GET shows it."""
        ...

    @property
    def mcp_api_key(self) -> str:
        """Its MCP server's key (``fetchMcpServerCredentials``)."""
        ...

    def rotate_mcp_api_key(self, new_key: str | None = None) -> str:
        """Replace its MCP key (``rotateMcpServerCredentials``) and return the new one."""
        ...


P = TypeVar("P", bound=ManagedPool)
"""The pool type a registry holds."""


class PoolRegistry(Protocol[P]):
    """The pools of a host and the long-running operations that change them."""

    @property
    def operations(self) -> ArmOperationStore:
        """Long-running operations (their status URLs)."""
        ...

    def find_pool(self, key: ResourceKey) -> P | None:
        """The pool at ``key`` (case-insensitive), or None."""
        ...

    def list_pools(self, *, subscription: str | None = None, resource_group: str | None = None) -> list[P]:
        """Pools of a subscription (and resource group), in a stable order."""
        ...

    async def begin_create_or_replace(
        self, key: ResourceKey, settings: PoolSettings
    ) -> tuple[P, ArmOperation]:
        """Start creating the pool (or replacing its settings)."""
        ...

    async def begin_update(self, pool: P, settings: PoolSettings) -> ArmOperation:
        """Start applying ``settings`` to ``pool``."""
        ...

    def begin_delete(self, pool: P) -> ArmOperation:
        """Start deleting ``pool``."""
        ...
