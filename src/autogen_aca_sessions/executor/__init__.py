"""``ACADynamicSessionsCodeExecutor``: AutoGen code execution in Azure Container Apps dynamic sessions.

Drop-in for ``autogen_ext.code_executors.azure.ACADynamicSessionsCodeExecutor``::

    from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor
"""

from __future__ import annotations

from autogen_aca_sessions.client.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    CheckpointSessionGoneError,
    CheckpointTamperedError,
    SkippedVariable,
)
from autogen_aca_sessions.executor._executor import (
    ACADynamicSessionsCodeExecutor,
    ACADynamicSessionsCodeExecutorConfig,
)
from autogen_aca_sessions.executor._results import ACADynamicSessionsBlockResult, ACADynamicSessionsCodeResult
from autogen_aca_sessions.executor._sandbox_executor import (
    ACASandboxCodeExecutor,
    ACASandboxCodeExecutorConfig,
    ACASandboxCodeResult,
    SandboxGoneError,
)

__all__ = [
    "ACADynamicSessionsBlockResult",
    "ACADynamicSessionsCodeExecutor",
    "ACADynamicSessionsCodeExecutorConfig",
    "ACADynamicSessionsCodeResult",
    "ACASandboxCodeExecutor",
    "ACASandboxCodeExecutorConfig",
    "ACASandboxCodeResult",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointSessionGoneError",
    "CheckpointTamperedError",
    "SandboxGoneError",
    "SkippedVariable",
]
