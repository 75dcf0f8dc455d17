"""``SandboxShellExecutor``: Agent Framework's ``ShellExecutor`` protocol on real sandboxes of the
local server, driven by the real ``agent-framework-core`` harness and ``agent-framework-tools``
shell tooling. The same contract as ``DynamicSessionsShellExecutor`` (test_af_shell_executor.py)."""

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
    ExecuteCodeTool,
    Sandboxes,
    SandboxesConfig,
    SandboxShellExecutor,
)
from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ToolCall
from autogen_aca_sessions.client.errors import NotFoundError
from autogen_aca_sessions.client.sandboxes import SandboxState
from autogen_aca_sessions.local import LocalSessionsServer
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-af-shell"
GROUP = "af-shell-group"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer() as running:
        await running.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield running


def config_for(server: LocalSessionsServer) -> SandboxesConfig:
    return SandboxesConfig(
        endpoint=server.base_url,
        subscription_id=SUB,
        resource_group=RG,
        sandbox_group=GROUP,
        timeout_seconds=20,
        delete_on_close=True,
    )


@pytest_asyncio.fixture(loop_scope="module")
async def sandboxes(server: LocalSessionsServer) -> AsyncIterator[Sandboxes]:
    async with Sandboxes(config_for(server), credential=server.api_key) as owned:
        yield owned


async def test_it_is_a_shell_executor_and_runs_commands_in_the_work_dir_with_their_exit_status(
    sandboxes: Sandboxes,
) -> None:
    executor: ShellExecutor = SandboxShellExecutor(sandboxes)
    assert isinstance(executor, ShellExecutor)
    async with executor:
        result = await executor.run("pwd; echo to-stderr >&2; printf 'caf\\xc3\\xa9 \\xff\\n'; exit 3")
        wrote = await executor.run("echo kept > note.txt && cd / && export GONE=1")
        after = await executor.run('cat note.txt; pwd; echo "[${GONE:-unset}]"')
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0] == "/root/work"
    # Bytes that are not UTF-8 come back replaced, never as an error.
    assert lines[1] == "café \ufffd"
    assert result.stderr == "to-stderr\n"
    assert not result.timed_out
    assert not result.truncated
    assert wrote.exit_code == 0
    # Files persist between commands; each command starts a fresh shell in the working directory.
    assert after.stdout.splitlines() == ["kept", "/root/work", "[unset]"]


async def test_a_command_past_its_timeout_is_ended_in_the_sandbox_and_keeps_its_output(
    sandboxes: Sandboxes,
) -> None:
    async with SandboxShellExecutor(sandboxes, timeout=20) as executor:
        slow = await executor.run("echo started; sleep 30; echo finished", timeout=1)
        # Nothing of it runs on into the next command.
        after = await executor.run("ps -eo args | grep -c '[s]leep 30' || true")
    assert slow.timed_out
    assert slow.exit_code == 124
    assert slow.stdout == "started\n"
    assert "finished" not in slow.stdout
    assert after.stdout.strip() == "0"


async def test_output_beyond_the_byte_cap_keeps_its_start_and_end(sandboxes: Sandboxes) -> None:
    async with SandboxShellExecutor(sandboxes, max_output_bytes=100) as executor:
        result = await executor.run("echo FIRST; head -c 5000 /dev/zero | tr '\\0' x; echo; echo LAST")
    assert result.truncated
    assert result.stdout.startswith("FIRST\n")
    assert result.stdout.endswith("LAST\n")
    assert "bytes cut" in result.stdout
    assert len(result.stdout.encode()) < 200


async def test_it_shares_the_conversations_sandbox_with_the_code_tool_and_resumes_it(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    code = ExecuteCodeTool(sandboxes)
    await call(code, conversation, code="open('from_python.txt', 'w').write('written by python')")
    assert await sandboxes.suspend(conversation)
    async with SandboxShellExecutor(sandboxes, session=conversation) as executor:
        # The command resumes the suspended sandbox.
        result = await executor.run("cat from_python.txt")
    assert result.stdout == "written by python"
    # The conversation's sandbox is not the executor's to delete.
    assert await sandboxes.state(conversation) is SandboxState.RUNNING
    listed = text_of(await call(code, conversation, code="print(open('from_python.txt').read())"))
    assert "written by python" in listed
    await sandboxes.release(conversation)


async def test_a_closed_executor_refuses_commands_and_deletes_the_sandbox_it_made(
    sandboxes: Sandboxes,
) -> None:
    executor = SandboxShellExecutor(sandboxes)
    await executor.run("true")
    sandbox_id = sandboxes.sandbox_id_for(executor.session)
    assert sandbox_id is not None
    await executor.close()
    await executor.close()
    with pytest.raises(NotFoundError):
        await sandboxes.client.get(sandbox_id)
    with pytest.raises(ShellExecutionError, match="closed"):
        await executor.run("true")


async def test_a_deleted_sandbox_is_a_shell_execution_error_naming_it(sandboxes: Sandboxes) -> None:
    async with SandboxShellExecutor(sandboxes) as executor:
        await executor.run("true")
        sandbox_id = sandboxes.sandbox_id_for(executor.session)
        assert sandbox_id is not None
        await sandboxes.client.delete(sandbox_id)
        with pytest.raises(ShellExecutionError, match=f"sandbox '{sandbox_id}' no longer exists"):
            await executor.run("echo hi")
        # The next command runs in a new sandbox.
        again = await executor.run("echo hi")
    assert again.stdout == "hi\n"


async def test_agent_frameworks_harness_probes_and_runs_its_shell_tool_in_the_sandbox(
    server: LocalSessionsServer,
) -> None:
    async with SandboxShellExecutor(config_for(server), credential=server.api_key) as executor:
        # agent-framework-tools' own environment probe, through the executor.
        probe = ShellEnvironmentProvider(
            executor, ShellEnvironmentProviderOptions(probe_tools=("python3", "no-such-tool"))
        )
        snapshot = await probe.refresh()
        assert snapshot.working_directory == "/root/work"
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
        # The command ran in the executor's sandbox: the file is there.
        assert (await executor.run("cat answer.txt")).stdout == "42\n"


async def test_hostile_commands_come_back_as_results_not_errors(sandboxes: Sandboxes) -> None:
    async with SandboxShellExecutor(sandboxes) as executor:
        # Over Linux's 128 KiB limit for one argument: the command travels as a file.
        big = await executor.run("true " + "x" * 200_000 + "\necho big-ran")
        nul = await executor.run("echo a\x00b")
        surrogate = await executor.run("echo '\udcff'")
        after = await executor.run("echo still-usable")
    assert big.exit_code == 0, big.stderr
    assert big.stdout == "big-ran\n"
    # bash refuses a script holding a NUL byte: a failed command, not a failed executor.
    assert nul.exit_code == 126
    assert "cannot execute binary file" in nul.stderr
    # A lone surrogate travels as bytes that are not UTF-8; the output decodes with replacement.
    assert surrogate.exit_code == 0, surrogate.stderr
    assert surrogate.stdout.strip("\ufffd") == "\n"
    assert "\ufffd" in surrogate.stdout
    assert after.stdout == "still-usable\n"


async def test_bad_arguments_are_shell_execution_errors(sandboxes: Sandboxes) -> None:
    async with SandboxShellExecutor(sandboxes) as executor:
        with pytest.raises(ShellExecutionError, match="must be a string"):
            await executor.run(b"ls")  # type: ignore[arg-type]
        with pytest.raises(ShellExecutionError, match="timeout must be positive"):
            await executor.run("ls", timeout=0)
    with pytest.raises(ValueError, match="max_output_bytes"):
        SandboxShellExecutor(sandboxes, max_output_bytes=0)
