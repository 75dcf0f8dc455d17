"""The local session pool: the Azure dynamic-sessions data plane on this machine.

``LocalSessionPool`` runs an aiohttp server on loopback speaking every api-version of the
reference, backed by one real Jupyter kernel per session; a :class:`PoolConfig` says what the
pool is. It is a ``LocalSessionsServer`` (many pools on one port, and the ARM management plane)
hosting one pool of its own. ``create_app`` builds the bare application around a session
runtime, for tests and benchmarks.
"""

from __future__ import annotations

from .config import Isolation, KernelLauncherKind, PoolConfig, PoolType, SandboxMode
from .frontends.auth import AsyncStaticKeyCredential, StaticKeyCredential
from .frontends.dataplane.app import create_app, operation_path
from .frontends.dataplane.faults import FaultInjector, FaultPlan, FaultPlanError
from .frontends.dataplane.wire.versions import API_VERSIONS
from .hosting.pool import LocalSessionPool
from .hosting.server import LocalSessionsServer

__all__ = [
    "API_VERSIONS",
    "AsyncStaticKeyCredential",
    "FaultInjector",
    "FaultPlan",
    "FaultPlanError",
    "Isolation",
    "KernelLauncherKind",
    "LocalSessionPool",
    "LocalSessionsServer",
    "PoolConfig",
    "PoolType",
    "SandboxMode",
    "StaticKeyCredential",
    "create_app",
    "operation_path",
]
