"""End-to-end: ACADynamicSessionsCodeExecutor on a Shell pool (commands through shellCommand)."""

from __future__ import annotations

from typing import Any

import pytest
from _executor_helpers import make_executor as make_any_executor
from _executor_helpers import run_blocks as run
from autogen_core import CancellationToken

from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor
from autogen_aca_sessions.pytest_plugin import AcaPool

# The package's own pytest plugin provides the Shell pool (as it does for users).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.aca_pool(pool_type="Shell")]


def make_executor(pool: AcaPool, **kwargs: Any) -> ACADynamicSessionsCodeExecutor:
    return make_any_executor(pool, shell_pool=True, **kwargs)


async def test_shell_blocks_report_real_exit_codes_and_share_files(aca_pool: AcaPool) -> None:
    async with make_executor(aca_pool) as executor:
        ok = await run(executor, ("bash", "echo hello > note.txt; cat note.txt"))
        failed = await run(executor, ("sh", "echo partial; exit 7"), ("bash", "echo never"))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == "hello"
    assert failed.exit_code == 7
    assert "partial" in failed.output
    assert "never" not in failed.output


async def test_python_blocks_run_as_python3_processes(aca_pool: AcaPool) -> None:
    async with make_executor(aca_pool) as executor:
        result = await run(executor, ("python", "import sys\nprint(sys.version_info.major, 'it\\'s quoted')"))
        raised = await run(executor, ("python", "raise SystemExit(3)"))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "3 it's quoted"
    assert raised.exit_code == 3


async def test_shell_pool_rejects_injected_functions_and_old_api_versions(aca_pool: AcaPool) -> None:
    def helper() -> int:
        return 1

    with pytest.raises(ValueError, match="Python pool"):
        make_executor(aca_pool, functions=[helper])
    with pytest.raises(ValueError, match="2025-02-02-preview"):
        make_executor(aca_pool, api_version="2024-10-02-preview")


async def test_shell_pool_lists_packages(aca_pool: AcaPool) -> None:
    async with make_executor(aca_pool) as executor:
        packages = await executor.get_available_packages(CancellationToken())
    assert "numpy" in {name.lower() for name in packages}


async def test_a_python_block_over_the_argument_size_limit_runs_and_leaves_no_file(aca_pool: AcaPool) -> None:
    # The pool runs "bash -c <command>"; Linux refuses one argument over 128 KiB, so a big block
    # goes up as a file and runs from there.
    code = "x = '" + "a" * 150_000 + "'\nprint(len(x))\n"
    async with make_executor(aca_pool) as executor:
        result = await run(executor, ("python", code))
        left = await executor.get_file_list()
    assert result.exit_code == 0, result.output[-500:]
    assert result.stdout.strip() == "150000"
    assert not [name for name in left if name.startswith(".aca_block_")]
