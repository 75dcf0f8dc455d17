"""CodeExecutorAgent with ACADynamicSessionsCodeExecutor against the local pool: python and sh
blocks, state, failures, and time limits that do not end a team's run."""

from __future__ import annotations

import warnings

import pytest
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, CodeExecutionEvent, TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeExecutor
from autogen_ext.models.replay import ReplayChatCompletionClient

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor
from autogen_aca_sessions.pytest_plugin import AcaPool

# The package's own pytest plugin provides the pool and the executor (as it does for users).
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:No approval function set for CodeExecutorAgent"),
    pytest.mark.aca_pool(ready_sessions=2, max_execution_seconds=30),
    pytest.mark.aca_executor(timeout=30),
]

TIMEOUT_EXIT_SENTENCE = "The script ran, then exited with an error (POSIX exit code: 124)"


@pytest.fixture
def executor(aca_executor: ACADynamicSessionsCodeExecutor) -> ACADynamicSessionsCodeExecutor:
    return aca_executor


def runner(executor: CodeExecutor) -> CodeExecutorAgent:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CodeExecutorAgent("runner", code_executor=executor)


async def stream(agent: CodeExecutorAgent, task: str) -> list[BaseAgentEvent | BaseChatMessage]:
    """Everything the agent emitted for a task (``run()`` keeps only the final message)."""
    return [item async for item in agent.run_stream(task=task) if not isinstance(item, TaskResult)]


async def reply_to(agent: CodeExecutorAgent, text: str) -> str:
    response = await agent.on_messages([TextMessage(content=text, source="user")], CancellationToken())
    assert isinstance(response.chat_message, TextMessage)
    return response.chat_message.content


async def test_agent_runs_a_python_block_from_a_message(executor: ACADynamicSessionsCodeExecutor) -> None:
    reply = await reply_to(
        runner(executor), "Here:\n```python\nvalues = [3, 4, 5]\nprint(sum(v * v for v in values))\n```"
    )

    assert reply.strip() == "50"


async def test_agent_runs_an_sh_block_in_the_session_working_directory(
    aca_pool: AcaPool, executor: ACADynamicSessionsCodeExecutor
) -> None:
    agent = runner(executor)
    python_cwd = (await reply_to(agent, "```python\nimport os\nprint(os.getcwd())\n```")).strip()

    reply = await reply_to(agent, '```sh\necho "shell in $(pwd)"\nexpr 6 \\* 7\n```')

    assert reply.splitlines()[:2] == [f"shell in {python_cwd}", "42"]
    # Sandboxed sessions see their directory where Azure's do; unsandboxed ones run in place.
    assert (python_cwd == "/mnt/data") == (aca_pool.isolation == "bwrap")


async def test_python_and_sh_blocks_share_the_session_files(executor: ACADynamicSessionsCodeExecutor) -> None:
    agent = runner(executor)
    await reply_to(agent, "```python\nopen('note.txt', 'w').write('written by python')\n```")

    reply = await reply_to(agent, "```sh\ncat note.txt; echo; ls\n```")

    assert "written by python" in reply
    assert "note.txt" in reply


async def test_state_persists_between_messages(executor: ACADynamicSessionsCodeExecutor) -> None:
    agent = runner(executor)
    await reply_to(agent, "```python\nimport pandas as pd\nframe = pd.DataFrame({'n': range(5)})\n```")

    reply = await reply_to(agent, "```python\nprint(int(frame['n'].sum()))\n```")

    assert reply.strip() == "10"


async def test_a_failing_block_reports_its_traceback_and_exit_code(
    executor: ACADynamicSessionsCodeExecutor,
) -> None:
    reply = await reply_to(runner(executor), "```python\nprint('before')\n{}['missing']\n```")

    assert reply.startswith("The script ran, then exited with an error (POSIX exit code: 1)")
    assert "before" in reply
    assert "KeyError" in reply


async def test_an_sh_block_reports_the_scripts_own_exit_status(
    executor: ACADynamicSessionsCodeExecutor,
) -> None:
    reply = await reply_to(runner(executor), "```sh\necho partial\nexit 3\n```")

    assert reply.startswith("The script ran, then exited with an error (POSIX exit code: 3)")
    assert "partial" in reply


async def test_agent_with_its_own_model_generates_runs_and_reflects(
    executor: ACADynamicSessionsCodeExecutor,
) -> None:
    model = ReplayChatCompletionClient(
        ["```python\nimport math\nprint(round(math.pi, 4))\n```", "Pi to four places is 3.1416."]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = CodeExecutorAgent("coder", code_executor=executor, model_client=model)

    events = await stream(agent, "What is pi to four decimal places?")

    executions = [m for m in events if isinstance(m, CodeExecutionEvent)]
    assert len(executions) == 1
    assert executions[0].result.exit_code == 0
    assert executions[0].result.output.strip() == "3.1416"
    assert events[-1].to_text() == "Pi to four places is 3.1416."


async def test_a_timeout_inside_a_team_returns_124_and_the_team_continues(aca_pool: AcaPool) -> None:
    coder_turns = [
        "Slow way first.\n```python\nimport time\nprint('working', flush=True)\ntime.sleep(60)\n```",
        "That timed out; the session should still work.\n```python\nprint('still alive', 20 + 22)\n```",
        "The session survived the timeout. TERMINATE",
    ]
    async with ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=aca_pool.endpoint, credential=aca_pool.credential, timeout=2
    ) as executor:
        coder = AssistantAgent("coder", model_client=ReplayChatCompletionClient(coder_turns))
        team = RoundRobinGroupChat(
            [coder, runner(executor)],
            termination_condition=TextMentionTermination("TERMINATE", sources=["coder"])
            | MaxMessageTermination(10),
        )

        result = await team.run(task="Show that a slow step does not break the session.")

    replies = [m.to_text() for m in result.messages if m.source == "runner"]
    assert len(replies) == 2
    assert replies[0].startswith(TIMEOUT_EXIT_SENTENCE)
    assert "working" in replies[0]
    assert replies[1].strip() == "still alive 42"
    assert result.stop_reason is not None
    assert "TERMINATE" in result.stop_reason


async def test_a_timeout_gives_a_code_execution_event_with_exit_124(aca_pool: AcaPool) -> None:
    model = ReplayChatCompletionClient(
        ["```python\nwhile True:\n    pass\n```", "The loop never ends, so it was stopped at the time limit."]
    )
    async with ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=aca_pool.endpoint, credential=aca_pool.credential, timeout=2
    ) as executor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            agent = CodeExecutorAgent("coder", code_executor=executor, model_client=model)

        events = await stream(agent, "Loop forever.")

    executions = [m for m in events if isinstance(m, CodeExecutionEvent)]
    assert [event.result.exit_code for event in executions] == [124]
    assert events[-1].to_text() == "The loop never ends, so it was stopped at the time limit."


async def test_the_same_agent_runs_with_autogen_ext_executor_against_the_local_pool(
    aca_pool: AcaPool,
) -> None:
    # The local pool speaks the legacy contract autogen-ext uses, and pool.credential has the
    # get_token it calls: migrating in either direction is one import.
    from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor as UpstreamExecutor

    upstream = UpstreamExecutor(aca_pool.endpoint, aca_pool.credential, suppress_result_output=True)
    async with upstream:
        reply = await reply_to(runner(upstream), "```python\nprint(sum(range(1, 10)))\n```")

    assert reply.strip() == "45"
