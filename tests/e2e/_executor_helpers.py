"""Helpers the executor's end-to-end tests share (imported as ``_executor_helpers``)."""

from __future__ import annotations

from typing import Any

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions.client import ApiVersion
from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor, ACADynamicSessionsCodeResult

LEGACY = ApiVersion.V2024_02_02_PREVIEW.value
"""The oldest api-version: no session management, synchronous executions."""
NO_DELETE = ApiVersion.V2024_10_02_PREVIEW.value
"""The new contract before session management (no delete)."""
NEWEST = ApiVersion.V2025_10_02_PREVIEW.value
"""The default api-version."""


def make_executor(pool: Any, **kwargs: Any) -> ACADynamicSessionsCodeExecutor:
    """An executor on ``pool`` with its credential."""
    return ACADynamicSessionsCodeExecutor(pool.endpoint, pool.credential, **kwargs)


async def run_code(
    executor: ACADynamicSessionsCodeExecutor, code: str, language: str = "python"
) -> ACADynamicSessionsCodeResult:
    """Run one block."""
    return await executor.execute_code_blocks([CodeBlock(code=code, language=language)], CancellationToken())


async def run_blocks(
    executor: ACADynamicSessionsCodeExecutor, *blocks: tuple[str, str]
) -> ACADynamicSessionsCodeResult:
    """Run ``(language, code)`` blocks in one call."""
    return await executor.execute_code_blocks(
        [CodeBlock(code=code, language=language) for language, code in blocks], CancellationToken()
    )
