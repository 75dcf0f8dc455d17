"""Teams against the local pool: several rounds of code in one session, restart() between
tasks, and a team resumed from saved state on the same session id."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pytest
from _executor_helpers import make_executor
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock
from autogen_ext.models.replay import ReplayChatCompletionClient

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor, LocalSessionPool
from autogen_aca_sessions.client import SessionsClient

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:No approval function set for CodeExecutorAgent"),
]

FAILED_PREFIX = "The script ran, then exited with an error"


POOL_OPTIONS = {"ready_sessions": 2, "max_execution_seconds": 60}


def coder_and_runner_team(
    executor: ACADynamicSessionsCodeExecutor, turns: Sequence[str]
) -> RoundRobinGroupChat:
    coder = AssistantAgent("coder", model_client=ReplayChatCompletionClient(list(turns)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = CodeExecutorAgent("runner", code_executor=executor)
    return RoundRobinGroupChat(
        [coder, runner],
        termination_condition=TextMentionTermination("TERMINATE", sources=["coder"])
        | MaxMessageTermination(16),
    )


def coder_then_runner(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
    return "runner" if messages[-1].source == "coder" else "coder"


def resumable_team(executor: ACADynamicSessionsCodeExecutor, turns: Sequence[str]) -> SelectorGroupChat:
    # Chooses by the last speaker: a round-robin team's saved state would resume with the
    # runner, because the previous run ended on the coder's TERMINATE.
    coder = AssistantAgent("coder", model_client=ReplayChatCompletionClient(list(turns)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = CodeExecutorAgent("runner", code_executor=executor)
    return SelectorGroupChat(
        [coder, runner],
        model_client=ReplayChatCompletionClient([]),
        selector_func=coder_then_runner,
        allow_repeated_speaker=True,
        termination_condition=TextMentionTermination("TERMINATE", sources=["coder"])
        | MaxMessageTermination(16),
    )


def runner_replies(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> list[str]:
    return [m.to_text() for m in messages if m.source == "runner"]


async def sessions_of(pool: LocalSessionPool) -> set[str]:
    async with SessionsClient(pool.endpoint, pool.credential) as client:
        return {info.identifier for info in await client.list_sessions()}


async def test_a_group_chat_runs_several_rounds_of_code_in_one_session(pool: LocalSessionPool) -> None:
    turns = [
        "```python\nimport numpy as np\n"
        "sample = np.random.default_rng(0).integers(0, 100, 1000)\nprint(len(sample))\n```",
        "```python\nevens = sample[sample % 2 == 0]\nprint(len(evens) + len(sample[sample % 2 == 1]))\n```",
        "```sh\necho rounds-so-far: 2\n```",
        "```python\nimport json\nwith open('summary.json', 'w') as f:\n"
        "    json.dump({'n': int(len(sample))}, f)\n"
        "print(open('summary.json').read())\n```",
        "Four rounds ran in the same session. TERMINATE",
    ]
    async with make_executor(pool, timeout=60) as executor:
        result = await coder_and_runner_team(executor, turns).run(task="Work in steps.")
        files = await executor.get_file_list(CancellationToken())

    replies = runner_replies(result.messages)
    assert [reply.strip() for reply in replies] == ["1000", "1000", "rounds-so-far: 2", '{"n": 1000}']
    assert "summary.json" in files
    assert result.stop_reason is not None
    assert "TERMINATE" in result.stop_reason


async def test_a_failed_round_does_not_end_the_group_chat(pool: LocalSessionPool) -> None:
    turns = [
        "```python\nprint(undefined_name)\n```",
        "I forgot to define it.\n```python\nundefined_name = 'now defined'\nprint(undefined_name)\n```",
        "Fixed. TERMINATE",
    ]
    async with make_executor(pool, timeout=60) as executor:
        result = await coder_and_runner_team(executor, turns).run(task="Print a name.")

    replies = runner_replies(result.messages)
    assert replies[0].startswith(FAILED_PREFIX)
    assert "NameError" in replies[0]
    assert replies[1].strip() == "now defined"


def fixed_order(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> str | None:
    last = messages[-1]
    if last.source in ("user", "runner"):
        return "planner" if last.source == "user" else "coder"
    if last.source == "planner":
        return "coder"
    return "runner" if "```" in last.to_text() else "planner"


async def test_a_selector_group_chat_with_planner_coder_and_executor(pool: LocalSessionPool) -> None:
    planner = AssistantAgent(
        "planner",
        model_client=ReplayChatCompletionClient(["1. make data 2. total it", "Done. TERMINATE"]),
        description="plans",
    )
    coder = AssistantAgent(
        "coder",
        model_client=ReplayChatCompletionClient(
            [
                "```python\ndata = list(range(1, 11))\n```",
                "```python\nprint(sum(data))\n```",
                "Both steps ran.",
            ]
        ),
        description="writes code",
    )
    async with make_executor(pool, timeout=60) as executor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runner = CodeExecutorAgent("runner", code_executor=executor)
        team = SelectorGroupChat(
            [planner, coder, runner],
            model_client=ReplayChatCompletionClient([]),
            selector_func=fixed_order,
            allow_repeated_speaker=True,
            termination_condition=TextMentionTermination("TERMINATE", sources=["planner"])
            | MaxMessageTermination(12),
        )
        result = await team.run(task="Total the numbers 1 to 10.")

    assert [m.source for m in result.messages] == [
        "user",
        "planner",
        "coder",
        "runner",
        "coder",
        "runner",
        "coder",
        "planner",
    ]
    assert runner_replies(result.messages)[1].strip() == "55"


async def test_restart_between_tasks_wipes_variables_and_files_and_releases_the_old_session(
    pool: LocalSessionPool,
) -> None:
    first = [
        "```python\nsecret = 'from task one'\nopen('task1.txt', 'w').write(secret)\n```",
        "TERMINATE",
    ]
    second = [
        "```python\nimport os\nprint('secret' in globals(), sorted(os.listdir()))\n```",
        "TERMINATE",
    ]
    async with make_executor(pool, timeout=60) as executor:
        await coder_and_runner_team(executor, first).run(task="Task one.")
        old_session = executor.session_id
        assert old_session in await sessions_of(pool)

        await executor.restart()
        result = await coder_and_runner_team(executor, second).run(task="Task two.")
        new_session = executor.session_id
        live = await sessions_of(pool)

    assert new_session != old_session
    assert old_session not in live
    assert new_session in live
    assert runner_replies(result.messages)[0].strip() == "False []"


async def test_restart_keeps_a_caller_chosen_session_id_but_wipes_its_state(pool: LocalSessionPool) -> None:
    async with make_executor(pool, timeout=60, session_id="agents-restart-fixed-id") as executor:
        setup = await executor.execute_code_blocks(
            [CodeBlock(code="kept = 1", language="python")], CancellationToken()
        )
        assert setup.exit_code == 0, setup.output

        await executor.restart()
        after = await executor.execute_code_blocks(
            [CodeBlock(code="print('kept' in globals())", language="python")], CancellationToken()
        )
        session_id = executor.session_id

    assert session_id == "agents-restart-fixed-id"
    assert after.output.strip() == "False"


async def test_a_new_team_resumes_saved_state_on_the_same_session(pool: LocalSessionPool) -> None:
    session_id = "agents-resume-test"
    step_one = ["```python\ntotal = sum(range(101))\nprint(total)\n```", "Step one done. TERMINATE"]
    step_two = ["```python\nprint(total * 2)\n```", "Step two done. TERMINATE"]

    async with make_executor(pool, timeout=60, session_id=session_id) as first_executor:
        first_team = resumable_team(first_executor, step_one)
        await first_team.run(task="Step one: compute the total.")
        state = await first_team.save_state()
    # The caller chose the session id, so stop() kept the session for whoever resumes it.
    assert session_id in await sessions_of(pool)

    async with make_executor(
        pool, timeout=60, session_id=session_id, release_session_on_stop=True
    ) as second_executor:
        second_team = resumable_team(second_executor, step_two)
        await second_team.load_state(state)
        result = await second_team.run(task="Step two: double the total from step one.")
        contexts = await second_team.save_state()

    assert [m.source for m in result.messages] == ["user", "coder", "runner", "coder"]
    assert runner_replies(result.messages)[0].strip() == "10100"
    # The resumed team's coder saw step one's conversation as well as step two's.
    coder_context = str(contexts)
    assert "compute the total" in coder_context
    assert "double the total" in coder_context
    assert session_id not in await sessions_of(pool)
