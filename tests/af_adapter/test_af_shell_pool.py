"""The shell tool against a local Shell pool with real sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework")

from agent_framework import AgentSession

from autogen_aca_sessions.agent_framework import (
    DynamicSessions,
    DynamicSessionsCodeActProvider,
    DynamicSessionsConfig,
    PoolKind,
    RunShellTool,
)
from autogen_aca_sessions.local import LocalSessionPool
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
POOL_OPTIONS = {"ready_sessions": 1, "pool_type": "Shell", "max_execution_seconds": 30}


@pytest_asyncio.fixture(loop_scope="module")
async def shell_sessions(module_pool: LocalSessionPool) -> AsyncIterator[DynamicSessions]:
    config = DynamicSessionsConfig(
        pool_management_endpoint=module_pool.endpoint, pool_kind=PoolKind.SHELL, timeout_seconds=3
    )
    async with DynamicSessions(config, credential=module_pool.async_credential) as owned:
        yield owned


async def test_shell_commands_keep_files_per_agent_session_and_report_exit_codes(
    shell_sessions: DynamicSessions,
) -> None:
    tool = RunShellTool(shell_sessions)
    conversation, other = AgentSession(), AgentSession()

    wrote = await call(tool, conversation, command="echo hello > note.txt && pwd")
    read = await call(tool, conversation, command="cat note.txt")
    elsewhere = await call(tool, other, command="cat note.txt")

    assert "exit code: 0" in text_of(wrote)
    assert "/mnt/data" in text_of(wrote)
    assert "stdout:\nhello" in text_of(read)
    assert "status: failed" in text_of(elsewhere)
    assert "exit code: 0" not in text_of(elsewhere)
    assert "No such file" in text_of(elsewhere)


async def test_a_shell_timeout_returns_the_output_so_far(shell_sessions: DynamicSessions) -> None:
    tool = RunShellTool(shell_sessions)
    conversation = AgentSession()

    contents = await call(tool, conversation, command="echo started; sleep 20; echo finished")
    after = await call(tool, conversation, command="echo still usable")

    text = text_of(contents)
    assert "started" in text
    assert "finished" not in text
    assert any(c.type == "error" for c in contents)
    assert "still usable" in text_of(after)


async def test_the_provider_offers_the_shell_tool_for_a_shell_pool(shell_sessions: DynamicSessions) -> None:
    provider = DynamicSessionsCodeActProvider(shell_sessions)

    assert [tool.name for tool in provider.tools] == ["run_shell", "list_files"]
    instructions = await provider.instructions(AgentSession())
    assert "`run_shell`" in instructions
    assert "execute_code" not in instructions


async def test_the_shell_executor_runs_natively_on_a_shell_pool(shell_sessions: DynamicSessions) -> None:
    from agent_framework_tools.shell import ShellExecutor

    from autogen_aca_sessions.agent_framework import DynamicSessionsShellExecutor

    executor: ShellExecutor = DynamicSessionsShellExecutor(shell_sessions)
    async with executor:
        failed = await executor.run("echo out; echo err >&2; echo kept > kept.txt; exit 5")
        kept = await executor.run("cat kept.txt; pwd")
        slow = await executor.run("echo started; sleep 20; echo finished", timeout=1)
    assert (failed.exit_code, failed.stdout, failed.stderr) == (5, "out\n", "err\n")
    assert kept.stdout == "kept\n/mnt/data\n"
    assert slow.timed_out
    assert slow.exit_code == 124
    assert "started" in slow.stdout
    assert "finished" not in slow.stdout
