"""Several agents at once against the local pool, each executor in its own session."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor, LocalSessionPool
from autogen_aca_sessions.client import SessionsClient

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:No approval function set for CodeExecutorAgent"),
]

AGENTS = 4


POOL_OPTIONS = {"ready_sessions": AGENTS, "max_execution_seconds": 60}


def work_for(name: str) -> str:
    # Each agent writes its name into a variable and a file, waits while the others do the same,
    # then reads both back: a shared interpreter or directory would show someone else's name.
    return f"""```python
import os
import time

owner = "{name}"
with open("owner.txt", "w") as handle:
    handle.write(owner)
time.sleep(1.5)
print(owner, open("owner.txt").read(), sorted(os.listdir()))
```"""


async def test_concurrent_agents_run_in_separate_sessions_without_cross_talk(pool: LocalSessionPool) -> None:
    names = [f"agent_{index}" for index in range(AGENTS)]
    executors = [
        ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=pool.endpoint, credential=pool.credential, timeout=60
        )
        for _ in names
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agents = [
            CodeExecutorAgent(name, code_executor=executor)
            for name, executor in zip(names, executors, strict=False)
        ]
    try:
        for executor in executors:
            await executor.start()
        responses = await asyncio.gather(
            *(
                agent.on_messages([TextMessage(content=work_for(name), source="user")], CancellationToken())
                for name, agent in zip(names, agents, strict=False)
            )
        )
        session_ids = [executor.session_id for executor in executors]
        async with SessionsClient(pool.endpoint, pool.credential) as client:
            live = {info.identifier for info in await client.list_sessions()}
    finally:
        for executor in executors:
            await executor.stop()

    assert len(set(session_ids)) == AGENTS
    assert set(session_ids) <= live
    for name, response in zip(names, responses, strict=False):
        assert isinstance(response.chat_message, TextMessage)
        assert response.chat_message.content.strip() == f"{name} {name} ['owner.txt']"


async def test_executions_of_concurrent_agents_overlap_in_time(pool: LocalSessionPool) -> None:
    # Separate sessions must not queue behind each other: each block reports when it started and
    # ended (wall clock inside its kernel), and every pair of intervals overlaps.
    code = "```python\nimport time\nstart = time.time()\ntime.sleep(3)\nprint(start, time.time())\n```"
    executors = [
        ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=pool.endpoint, credential=pool.credential, timeout=60
        )
        for _ in range(3)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agents = [CodeExecutorAgent(f"worker_{i}", code_executor=e) for i, e in enumerate(executors)]
    # Warm every session first so that kernel start-up does not decide the timing.
    for agent in agents:
        await agent.on_messages(
            [TextMessage(content="```python\n1\n```", source="user")], CancellationToken()
        )
    try:
        responses = await asyncio.gather(
            *(
                agent.on_messages([TextMessage(content=code, source="user")], CancellationToken())
                for agent in agents
            )
        )
    finally:
        for executor in executors:
            await executor.stop()

    intervals = []
    for response in responses:
        assert isinstance(response.chat_message, TextMessage)
        first_line = response.chat_message.content.splitlines()[0]
        started, ended = (float(value) for value in first_line.split())
        intervals.append((started, ended))
    latest_start = max(start for start, _ in intervals)
    earliest_end = min(end for _, end in intervals)
    assert latest_start < earliest_end, f"executions ran one after another: {intervals}"
