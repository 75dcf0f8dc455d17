"""``DynamicSessionsShellExecutor``: Agent Framework's ``ShellExecutor`` protocol on a real local
Python pool, driven by the real ``agent-framework-core`` harness and ``agent-framework-tools``
shell tooling (its environment probe and its shell tool wiring)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework_tools")

from agent_framework import AgentSession, create_harness_agent
from agent_framework_tools.shell import (
    ShellEnvironmentProvider,
    ShellEnvironmentProviderOptions,
    ShellExecutionError,
    ShellExecutor,
)

from autogen_aca_sessions.agent_framework import (
    DynamicSessions,
    DynamicSessionsConfig,
    DynamicSessionsShellExecutor,
    ExecuteCodeTool,
)
from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ToolCall
from autogen_aca_sessions.local import LocalSessionPool
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
POOL_OPTIONS = {"ready_sessions": 1}


@pytest_asyncio.fixture(loop_scope="module")
async def sessions(module_pool: LocalSessionPool) -> AsyncIterator[DynamicSessions]:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint, timeout_seconds=20)
    async with DynamicSessions(config, credential=module_pool.async_credential) as owned:
        yield owned


async def test_it_is_a_shell_executor_and_runs_commands_in_mnt_data_with_their_exit_status(
    sessions: DynamicSessions,
) -> None:
    executor: ShellExecutor = DynamicSessionsShellExecutor(sessions)
    assert isinstance(executor, ShellExecutor)
    async with executor:
        result = await executor.run("pwd; echo to-stderr >&2; printf 'caf\\xc3\\xa9 \\xff\\n'; exit 3")
        wrote = await executor.run("echo kept > note.txt && cd / && export GONE=1")
        after = await executor.run('cat note.txt; pwd; echo "[${GONE:-unset}]"')
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0] == "/mnt/data"
    # Bytes that are not UTF-8 come back replaced, never as an error.
    assert lines[1] == "café \ufffd"
    assert result.stderr == "to-stderr\n"
    assert not result.timed_out
    assert not result.truncated
    assert wrote.exit_code == 0
    # Files persist between commands; each command starts a fresh shell in /mnt/data.
    assert after.stdout.splitlines() == ["kept", "/mnt/data", "[unset]"]


async def test_a_command_past_its_timeout_is_killed_in_the_session_and_keeps_its_output(
    sessions: DynamicSessions,
) -> None:
    async with DynamicSessionsShellExecutor(sessions, timeout=20) as executor:
        slow = await executor.run("echo started; sleep 30; echo finished", timeout=1)
        # The process group was killed there: nothing of it runs on into the next command.
        after = await executor.run("ps -eo args | grep -c '[s]leep 30' || true")
    assert slow.timed_out
    assert slow.exit_code == 124
    assert slow.stdout == "started\n"
    assert "finished" not in slow.stdout
    assert after.stdout.strip() == "0"


async def test_output_beyond_the_byte_cap_keeps_its_start_and_end(sessions: DynamicSessions) -> None:
    async with DynamicSessionsShellExecutor(sessions, max_output_bytes=100) as executor:
        result = await executor.run("echo FIRST; head -c 5000 /dev/zero | tr '\\0' x; echo; echo LAST")
    assert result.truncated
    assert result.stdout.startswith("FIRST\n")
    assert result.stdout.endswith("LAST\n")
    assert "bytes cut" in result.stdout
    assert len(result.stdout.encode()) < 200


async def test_it_shares_the_conversations_session_with_the_code_tool(sessions: DynamicSessions) -> None:
    conversation = AgentSession()
    code = ExecuteCodeTool(sessions)
    await call(code, conversation, code="open('from_python.txt', 'w').write('written by python')")
    async with DynamicSessionsShellExecutor(sessions, session=conversation) as executor:
        result = await executor.run("cat from_python.txt")
    assert result.stdout == "written by python"
    # The conversation's session is not the executor's to release.
    assert sessions.has_session(conversation)
    listed = text_of(await call(code, conversation, code="print(open('from_python.txt').read())"))
    assert "written by python" in listed


async def test_a_closed_executor_refuses_commands_and_releases_the_session_it_made(
    module_pool: LocalSessionPool, sessions: DynamicSessions
) -> None:
    executor = DynamicSessionsShellExecutor(sessions)
    await executor.run("true")
    identifier = sessions.identifier_for(executor.session)
    assert module_pool.manager.get(identifier) is not None
    await executor.close()
    await executor.close()
    assert module_pool.manager.get(identifier) is None
    with pytest.raises(ShellExecutionError, match="closed"):
        await executor.run("true")


async def test_agent_frameworks_harness_probes_and_runs_its_shell_tool_in_the_session(
    module_pool: LocalSessionPool,
) -> None:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)
    async with DynamicSessionsShellExecutor(config, credential=module_pool.credential) as executor:
        # agent-framework-tools' own environment probe, through the executor.
        probe = ShellEnvironmentProvider(
            executor, ShellEnvironmentProviderOptions(probe_tools=("python3", "no-such-tool"))
        )
        snapshot = await probe.refresh()
        assert snapshot.working_directory == "/mnt/data"
        assert snapshot.shell_version
        assert (snapshot.tool_versions["python3"] or "").startswith("Python 3")
        assert snapshot.tool_versions["no-such-tool"] is None

        client = ScriptedChatClient(
            [ToolCall("run_shell", {"command": "echo $((6 * 7)) > answer.txt; cat answer.txt"}), "done"]
        )
        with warnings.catch_warnings():
            # The harness flags its shell tooling as pre-release.
            warnings.simplefilter("ignore")
            agent = create_harness_agent(
                client,
                shell_executor=executor,
                disable_file_memory=True,
                disable_todo=True,
                disable_mode=True,
                disable_web_search=True,
            )
        response = await agent.run("What is six times seven?", session=agent.create_session())
        assert response.text == "done"
        results = [
            content
            for message in client.calls[-1]
            for content in message.contents
            if content.type == "function_result"
        ]
        assert len(results) == 1
        assert "42" in str(results[0].result)
        assert "exit_code: 0" in str(results[0].result)
        # The command ran in the executor's session: the file is there.
        assert (await executor.run("cat answer.txt")).stdout == "42\n"


async def test_hostile_commands_come_back_as_results_not_errors(sessions: DynamicSessions) -> None:
    async with DynamicSessionsShellExecutor(sessions) as executor:
        nul = await executor.run("echo a\x00b")
        # Over Linux's 128 KiB limit for one argument: run from a file in the session.
        big = await executor.run("true " + "x" * 200_000 + "\necho big-ran")
        surrogate = await executor.run("echo '\udcff'")
    assert nul.exit_code != 0
    assert "null byte" in nul.stderr
    assert big.exit_code == 0, big.stderr
    assert big.stdout == "big-ran\n"
    # A lone surrogate is passed on as the byte it stands for; the output decodes with replacement.
    assert surrogate.exit_code == 0, surrogate.stderr
    assert surrogate.stdout == "\ufffd\n"
