"""Suspend an agent's sandbox between tasks and pick the work up later, memory included.

An AutoGen team (an analyst who writes code, an agent that runs it) loads sales orders into a
pandas DataFrame in an Azure Container Apps sandbox. Then the executor suspends the sandbox
(memory mode: the interpreter, its variables and its processes are frozen, not lost) and is
thrown away. A new team and a new executor, built only from the saved state (the sandbox id and
the team's conversation), resume the same sandbox and continue from the DataFrame still in
memory: no reload, no checkpoint file. While a block runs, its output shows on the console as
it is printed (``[live]`` lines: the executor's ``on_output``), before the team shows the result.

With no environment variables it starts a local server (real bubblewrap sandboxes, no Azure, no
key) and runs both tasks in this one process, as two processes would::

    python examples/suspend_between_tasks.py

Pointed at a running server (a local one from ``aca-sessions serve --management-plane`` with a
group created as its banner shows, or Azure), two separate runs share the work through a state
file: the first runs task 1, suspends and writes the file; the second resumes from it, runs
task 2, and deletes the sandbox::

    python examples/suspend_between_tasks.py --state work.json   # task 1, then suspend
    python examples/suspend_between_tasks.py --state work.json   # resume, task 2

Environment variables (the sandbox group; all four, or none):

* ``ACA_SANDBOXES_ENDPOINT``: the data-plane base URL (``https://management.<region>.azuredevcompute.io``
  on Azure; the server's base URL locally).
* ``ACA_SANDBOXES_SUBSCRIPTION_ID``, ``ACA_SANDBOXES_RESOURCE_GROUP``, ``ACA_SANDBOX_GROUP``:
  where the group is (the names ``agent_framework_sandbox.py`` reads too).
* ``ACA_SANDBOXES_API_KEY`` (optional): a static bearer token (the key ``aca-sessions serve``
  prints); without it the token comes from ``DefaultAzureCredential``.

The model is scripted unless ``OPENAI_API_KEY`` or Azure OpenAI variables are set (see
``_common.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _requirements import AUTOGEN, AUTOGEN_INSTALL, require

ENDPOINT_ENV = "ACA_SANDBOXES_ENDPOINT"
GROUP_ENV = ("ACA_SANDBOXES_SUBSCRIPTION_ID", "ACA_SANDBOXES_RESOURCE_GROUP", "ACA_SANDBOX_GROUP")
SUBSCRIPTION_ALIAS = "ACA_SANDBOXES_SUBSCRIPTION"
"""The subscription's variable as this example first named it; read when the documented one is unset."""
KEY_ENV = "ACA_SANDBOXES_API_KEY"

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=ENDPOINT_ENV)

from _common import FINISH_HINT, extract_code_result_failures, fail, model_client, model_description, run_main
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.teams import SelectorGroupChat
from autogen_agentchat.ui import Console

from autogen_aca_sessions.client.sandboxes import OutputChunk, SandboxesClient
from autogen_aca_sessions.executor import ACASandboxCodeExecutor

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

SANDBOX_HINT = (
    "You write code that runs in a persistent Python interpreter inside a sandbox: variables stay "
    "between your code blocks, and between tasks, even when the sandbox was suspended in between. "
    "pandas and numpy are installed; there is no network. Put each piece of code in one ```python "
    "block, print what you want to see, and wait for the result before going on."
)

TASK_1 = (
    "Task 1 of 2. Generate 180 days of sales orders (numpy, seed 7: a date, one of the regions North, "
    "South, East and West, units and a unit price per order) into a pandas DataFrame named `sales`, "
    "with a `revenue` column, and print its shape and total revenue. Keep `sales` in memory: task 2 "
    "comes later."
)
TASK_2 = (
    "Task 2 of 2. Using the `sales` DataFrame from task 1 (it is still in memory), find the region "
    "with the highest revenue growth from the first month to the last, and print each region's growth."
)

SCRIPTED_TASK_1 = [
    """```python
import os
import time
import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
days = pd.date_range("2024-01-01", periods=180, freq="D")
regions = np.array(["North", "South", "East", "West"])
growth = {"North": 1.00, "South": 1.05, "East": 0.98, "West": 1.11}
parts = []
for month in range(1, 7):  # one month of orders at a time, as a slow source would deliver them
    rows = 200
    date = rng.choice(days[days.month == month], rows)
    region = rng.choice(regions, rows)
    trend = np.array([growth[r] for r in region]) ** (month - 1)
    units = np.maximum(1, rng.normal(8, 3, rows) * trend).round()
    price = rng.choice([12.25, 19.99, 34.5], rows)
    parts.append(pd.DataFrame({"date": date, "region": region, "units": units, "unit_price": price}))
    print(f"loaded month {month}/6", flush=True)
    time.sleep(0.3)
sales = pd.concat(parts, ignore_index=True)
sales["revenue"] = sales.units * sales.unit_price
print(f"sales: {sales.shape[0]} rows x {sales.shape[1]} columns, revenue {sales.revenue.sum():,.2f}")
print(f"interpreter pid {os.getpid()}")
```""",
    """`sales` is loaded (summary above) and stays in the sandbox's memory for task 2.

TERMINATE""",
]

SCRIPTED_TASK_2 = [
    """`sales` is still in memory from task 1, so I use it directly.

```python
import os
monthly = sales.groupby([sales.date.dt.month, "region"]).revenue.sum().unstack()
growth = (monthly.iloc[-1] / monthly.iloc[0] - 1).sort_values(ascending=False)
print((growth * 100).round(1).to_string())
print(f"fastest growing region: {growth.index[0]}")
print(f"interpreter pid {os.getpid()} (rows still in memory: {len(sales)})")
```""",
    """The region with the highest growth is named above, computed from the DataFrame kept in memory.

TERMINATE""",
]


class LiveOutput:
    """The executor's ``on_output``: a running block's output on the console as it is printed
    (marked ``[live]``), before the team shows the block's whole result."""

    def __init__(self) -> None:
        self._at_line_start = True

    def __call__(self, chunk: OutputChunk) -> None:
        text = chunk.text
        lines = text.splitlines(keepends=True)
        for line in lines:
            if self._at_line_start:
                print("[live] ", end="")
            print(line, end="", flush=True)
            self._at_line_start = line.endswith("\n")


def analyst_after_anyone_but_analyst(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
    """The analyst answers the user and the executor; the executor answers the analyst (so a
    resumed team hands the new task to the analyst, whoever spoke last before the save)."""
    return "executor" if messages[-1].source == "analyst" else "analyst"


def build_team(executor: ACASandboxCodeExecutor, scripted_turns: list[str]) -> SelectorGroupChat:
    """The same team shape for both tasks."""
    analyst = AssistantAgent(
        "analyst",
        model_client=model_client(scripted_turns),
        system_message="You are a data analyst. " + SANDBOX_HINT + FINISH_HINT,
    )
    runner = CodeExecutorAgent("executor", code_executor=executor)
    return SelectorGroupChat(
        [analyst, runner],
        model_client=model_client([]),  # never asked: the selector function decides
        selector_func=analyst_after_anyone_but_analyst,
        allow_repeated_speaker=True,
        termination_condition=TextMentionTermination("TERMINATE", sources=["analyst"])
        | MaxMessageTermination(10),
    )


@dataclass
class Group:
    """Where the sandbox lives."""

    client: SandboxesClient
    """The group's data-plane client."""
    description: str
    """One line for the user."""
    persistent: bool
    """True when the server outlives this process (so a state file can be resumed by another)."""


@asynccontextmanager
async def sandbox_group() -> AsyncIterator[Group]:
    """The group the environment names, else one on a local server started for this run."""
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip()
    if endpoint:
        names = [os.environ.get(name, "").strip() for name in GROUP_ENV]
        names[0] = names[0] or os.environ.get(SUBSCRIPTION_ALIAS, "").strip()
        if not all(names):
            fail(f"{ENDPOINT_ENV} is set; set {', '.join(GROUP_ENV)} as well")
        subscription, resource_group, group = names
        key = os.environ.get(KEY_ENV, "").strip()
        credential: Any = key
        if not key:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
        async with SandboxesClient(
            endpoint,
            subscription_id=subscription,
            resource_group=resource_group,
            sandbox_group=group,
            credential=credential,
        ) as client:
            yield Group(client, f"sandbox group {group} at {endpoint}", persistent=True)
        return
    from autogen_aca_sessions.local import LocalSessionsServer

    subscription = "00000000-0000-0000-0000-000000000000"
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group("examples", subscription=subscription, resource_group="examples")
        async with SandboxesClient(
            server.base_url,
            subscription_id=subscription,
            resource_group="examples",
            sandbox_group="examples",
            credential=server.api_key,
        ) as client:
            yield Group(client, f"local server {server.base_url} (bubblewrap sandboxes)", persistent=False)


async def run_task(team: SelectorGroupChat, task: str) -> None:
    result = await Console(team.run_stream(task=task))
    failures = extract_code_result_failures(result.messages, "executor")
    if failures:
        fail(f"{len(failures)} code execution(s) failed; first:\n{failures[0]}")


async def task_one(group: Group, state_file: Path) -> None:
    executor = ACASandboxCodeExecutor(group.client, timeout=120, on_output=LiveOutput())
    team = build_team(executor, SCRIPTED_TASK_1)
    await run_task(team, TASK_1)
    await executor.suspend()
    state = {"executor": dict(await executor.save_state()), "team": await team.save_state()}
    await asyncio.to_thread(state_file.write_text, json.dumps(state, indent=2))
    # A suspended sandbox outlives stop(): it is kept for whoever loads the saved state.
    await executor.stop()
    print(
        f"\n=== Suspended sandbox {executor.sandbox_id}; saved its id and the team to {state_file}\n",
        flush=True,
    )


async def task_two(group: Group, state_file: Path) -> None:
    saved: dict[str, Any] = json.loads(await asyncio.to_thread(state_file.read_text))
    executor = ACASandboxCodeExecutor(group.client, timeout=120, on_output=LiveOutput())
    await executor.load_state(saved["executor"])  # a wrong or deleted id fails here, by name
    team = build_team(executor, SCRIPTED_TASK_2)
    await team.load_state(saved["team"])
    print(f"=== A new team and executor resume sandbox {executor.sandbox_id} from {state_file}\n", flush=True)
    try:
        await run_task(team, TASK_2)
    finally:
        await executor.stop()  # done with the work: the sandbox is deleted
    print("\nTask 2 used the DataFrame task 1 left in the suspended sandbox's memory.", flush=True)


async def main(state_file: Path | None) -> None:
    print(f"Model: {model_description()}", flush=True)
    async with sandbox_group() as group:
        print(f"Sandboxes: {group.description}\n", flush=True)
        if state_file is None:
            with tempfile.TemporaryDirectory() as folder:
                state = Path(folder) / "suspended_work.json"
                await task_one(group, state)
                await task_two(group, state)
            return
        if not group.persistent:
            fail(
                f"--state across runs needs a server that outlives this process: set {ENDPOINT_ENV}, "
                f"{', '.join(GROUP_ENV)} (and {KEY_ENV} for a local server)"
            )
        if await asyncio.to_thread(state_file.exists):
            await task_two(group, state_file)
            await asyncio.to_thread(state_file.unlink)
        else:
            await task_one(group, state_file)
            print(f"Run again with --state {state_file} to resume.", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state file: absent, run task 1 and write it; present, resume from it and run task 2",
    )
    args = parser.parse_args()
    if sys.platform != "linux" and not os.environ.get(ENDPOINT_ENV):
        fail("the local Sandboxes server needs Linux (bubblewrap); point the example at a server instead")
    run_main(main(args.state))
