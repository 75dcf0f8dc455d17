"""Several agents at once, each with its own executor and therefore its own session.

Each worker is a ``CodeExecutorAgent`` with its own model and its own
``ACADynamicSessionsCodeExecutor``. Every executor gets its own session identifier, so the
workers run in separate interpreters with separate ``/mnt/data`` directories and cannot see
each other's variables or files, even while they run at the same moment::

    python examples/concurrent_agents.py

The example checks that afterwards: distinct session ids, and each session holding only its
own worker's variable and file.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _common import (
    EXECUTOR_SYSTEM_HINT,
    PoolTarget,
    fail,
    model_client,
    model_description,
    run_main,
    session_pool,
)
from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")


@dataclass(frozen=True)
class Worker:
    """One worker's assignment."""

    name: str
    """Agent name, also written into the session so cross-talk would show."""
    samples: int
    """Monte Carlo samples."""
    seed: int
    """Random seed."""

    @property
    def task(self) -> str:
        return (
            f"You are {self.name}. Estimate pi by Monte Carlo with {self.samples} samples and seed "
            f"{self.seed}. Keep your name in a variable `owner`, and write your name and the estimate "
            "to /mnt/data/result.txt."
        )

    def scripted_turns(self) -> list[str]:
        code = f'''```python
import os
import time

import numpy as np

owner = "{self.name}"
rng = np.random.default_rng({self.seed})
points = rng.random(({self.samples}, 2))
estimate = 4 * float(((points ** 2).sum(axis=1) <= 1).mean())
time.sleep(1)  # stay busy while the other workers run, so any sharing would show
with open("result.txt", "w") as handle:
    handle.write(f"{{owner}} {{estimate}}")
print(owner, "estimates pi as", estimate, "| files here:", sorted(os.listdir()))
```'''
        summary = f"{self.name}: the estimate is printed above and saved in /mnt/data/result.txt."
        return [code, summary]


WORKERS = [
    Worker("worker_a", 200_000, 1),
    Worker("worker_b", 400_000, 2),
    Worker("worker_c", 800_000, 3),
]

CHECK = 'print(owner, "|", open("result.txt").read().split()[0])'


async def run_worker(
    worker: Worker, target: PoolTarget
) -> tuple[str, list[BaseAgentEvent | BaseChatMessage], str]:
    """Run one worker's task in its own session; returns (session id, transcript, check output)."""
    async with ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=target.endpoint, credential=target.credential, timeout=60
    ) as executor:
        agent = CodeExecutorAgent(
            worker.name,
            code_executor=executor,
            model_client=model_client(worker.scripted_turns()),
            system_message="You answer by running code. " + EXECUTOR_SYSTEM_HINT,
        )
        # run_stream yields the code the model wrote and the execution result as events too.
        transcript = [
            item async for item in agent.run_stream(task=worker.task) if not isinstance(item, TaskResult)
        ]
        check = await executor.execute_code_blocks(
            [CodeBlock(code=CHECK, language="python")], CancellationToken()
        )
        return executor.session_id, transcript, check.stdout.strip()


async def main() -> None:
    print(f"Model: {model_description()}", flush=True)
    async with session_pool(ready_sessions=len(WORKERS)) as target:
        print(f"Pool: {target.description}\n", flush=True)
        outcomes = await asyncio.gather(*(run_worker(worker, target) for worker in WORKERS))

    for worker, (session_id, transcript, check) in zip(WORKERS, outcomes, strict=False):
        print(f"--- {worker.name} (session {session_id})")
        for message in transcript[1:]:
            text = message.to_text().strip().replace("\n", "\n    ")
            print(f"  [{message.source}: {type(message).__name__}]\n    {text}")
        print(f"  check in its session: owner and file say {check!r}")

    session_ids = [session_id for session_id, _, _ in outcomes]
    if len(set(session_ids)) != len(WORKERS):
        fail(f"workers shared sessions: {session_ids}")
    for worker, (_, _, check) in zip(WORKERS, outcomes, strict=False):
        if check != f"{worker.name} | {worker.name}":
            fail(f"{worker.name}'s session holds someone else's state: {check!r}")
    print(
        f"\n{len(WORKERS)} workers ran at once in {len(set(session_ids))} separate sessions; no cross-talk."
    )


if __name__ == "__main__":
    run_main(main())
