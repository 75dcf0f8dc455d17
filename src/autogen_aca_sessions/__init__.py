"""AutoGen code executor for Azure Container Apps dynamic sessions, and a local session pool.

Public API::

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor, LocalSessionPool, SessionsClient
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Imported lazily so that `import autogen_aca_sessions` stays cheap and the client works
# without the `local` extra (jupyter_client, ipykernel, ...) installed.
_EXPORTS: dict[str, str] = {
    "ACADynamicSessionsCodeExecutor": "autogen_aca_sessions.executor",
    "ACADynamicSessionsCodeResult": "autogen_aca_sessions.executor",
    "SessionsClient": "autogen_aca_sessions.client",
    "ApiVersion": "autogen_aca_sessions.client",
    # The client's: what a caller of the executor or the client catches when the pool is full.
    "PoolFullError": "autogen_aca_sessions.client",
    # A 404 that is not the pool-full answer: no pool at the endpoint (a wrong URL).
    "PoolNotFoundError": "autogen_aca_sessions.client",
    "LocalSessionPool": "autogen_aca_sessions.local",
    "McpConnection": "autogen_aca_sessions.client",
    "LocalSessionsServer": "autogen_aca_sessions.local",
}

if TYPE_CHECKING:
    from autogen_aca_sessions.client import (
        ApiVersion,
        McpConnection,
        PoolFullError,
        PoolNotFoundError,
        SessionsClient,
    )
    from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor, ACADynamicSessionsCodeResult
    from autogen_aca_sessions.local import LocalSessionPool, LocalSessionsServer

__all__ = [
    "ACADynamicSessionsCodeExecutor",
    "ACADynamicSessionsCodeResult",
    "ApiVersion",
    "LocalSessionPool",
    "LocalSessionsServer",
    "McpConnection",
    "PoolFullError",
    "PoolNotFoundError",
    "SessionsClient",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'autogen_aca_sessions' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
