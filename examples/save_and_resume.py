"""Save a team's state, then resume the work later with a new team on the same session.

A dynamic session outlives the Python objects that talk to it: it keeps its variables and its
``/mnt/data`` until it has been idle for the pool's cooldown period. So a long job can stop
after one step and carry on later (in another process, after a deploy, ...) by saving two things:

* the team's state (``await team.save_state()``: the conversation the agents saw), and
* the session id (pass it as ``session_id=`` to the new executor).

This example runs step 1 with one team, writes both to a JSON file, throws the team and
executor away, and then builds a new team and executor from the file to run step 2, which
uses a variable step 1 left in the session::

    python examples/save_and_resume.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _common import (
    EXECUTOR_SYSTEM_HINT,
    FINISH_HINT,
    PoolTarget,
    extract_code_result_failures,
    fail,
    model_client,
    model_description,
    run_main,
    session_pool,
    uses_scripted_model,
)
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.teams import SelectorGroupChat
from autogen_agentchat.ui import Console
from autogen_core import CancellationToken

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

STEP_1 = (
    "Step 1 of 2. Simulate 30 days of hourly temperature readings for a sensor (numpy, seed 5, around "
    "21 °C) with a fault on days 9 and 23 that adds 6 °C, and compute the daily mean into a pandas "
    "Series named `daily`. Stop after that: step 2 comes later."
)
STEP_2 = (
    "Step 2 of 2. Using the `daily` series from step 1 (it is still in the session), flag the days "
    "whose mean is more than 2 standard deviations above the mean of all days, and save the flagged "
    "days to /mnt/data/anomalies.csv."
)

SCRIPTED_STEP_1 = [
    """```python
import numpy as np
import pandas as pd

rng = np.random.default_rng(5)
hours = pd.date_range("2024-03-01", periods=30 * 24, freq="h")
readings = pd.Series(21 + rng.normal(0, 0.8, len(hours)), index=hours)
for day in (9, 23):
    readings[readings.index.day == day] += 6
daily = readings.resample("D").mean().round(2)
print(daily.describe().round(2).to_string())
```""",
    """`daily` holds the 30 daily means (summary above). Step 1 is done; step 2 can pick it up later.

TERMINATE""",
]

SCRIPTED_STEP_2 = [
    """`daily` is still in the session from step 1, so I can use it directly.

```python
threshold = daily.mean() + 2 * daily.std()
anomalies = daily[daily > threshold]
anomalies.rename("mean_temperature").to_csv("anomalies.csv", index_label="day")
print(f"threshold {threshold:.2f} °C")
print(anomalies.to_string())
```""",
    """The flagged days are listed above and saved in /mnt/data/anomalies.csv.

TERMINATE""",
]


def analyst_after_anyone_but_analyst(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
    """The analyst answers the user and the executor; the executor answers the analyst.

    A SelectorGroupChat would also work for one run, but its saved state remembers whose turn
    is next: step 1 ends on the analyst's TERMINATE, so a resumed round-robin team would hand
    step 2's task to the executor first. Choosing by the last speaker makes resuming exact.
    """
    return "executor" if messages[-1].source == "analyst" else "analyst"


def build_team(executor: ACADynamicSessionsCodeExecutor, scripted_turns: list[str]) -> SelectorGroupChat:
    """The same team shape for both steps: an analyst who writes code and an agent that runs it."""
    analyst = AssistantAgent(
        "analyst",
        model_client=model_client(scripted_turns),
        system_message="You are a data analyst. " + EXECUTOR_SYSTEM_HINT + FINISH_HINT,
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


async def run(team: SelectorGroupChat, task: str) -> TaskResult:
    try:
        result = await Console(team.run_stream(task=task))
    except Exception as exc:
        fail(f"the team run raised {type(exc).__name__}: {exc}")
    failures = extract_code_result_failures(result.messages, "executor")
    if failures and uses_scripted_model():
        fail(f"{len(failures)} code execution(s) failed; first:\n{failures[0]}")
    return result


async def step_one(target: PoolTarget, checkpoint: Path) -> None:
    session_id = f"resume-demo-{uuid.uuid4()}"
    # release_session_on_stop=False: the session must survive this executor so step 2 can reuse it.
    async with ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=target.endpoint,
        credential=target.credential,
        session_id=session_id,
        release_session_on_stop=False,
    ) as executor:
        team = build_team(executor, SCRIPTED_STEP_1)
        await run(team, STEP_1)
        state = await team.save_state()
    document = json.dumps({"session_id": session_id, "team_state": state}, indent=2)
    await asyncio.to_thread(checkpoint.write_text, document)
    print(f"\n=== Saved the team's state and session id {session_id} to {checkpoint}\n", flush=True)


async def step_two(target: PoolTarget, checkpoint: Path) -> None:
    saved: dict[str, Any] = json.loads(await asyncio.to_thread(checkpoint.read_text))
    async with ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=target.endpoint,
        credential=target.credential,
        session_id=saved["session_id"],
    ) as executor:
        team = build_team(executor, SCRIPTED_STEP_2)
        await team.load_state(saved["team_state"])
        print(f"=== A new team resumed from {checkpoint} on session {saved['session_id']}\n", flush=True)
        await run(team, STEP_2)
        files = await executor.get_file_list(CancellationToken())
        if "anomalies.csv" not in files:
            fail(f"step 2 did not write /mnt/data/anomalies.csv (files: {files})")
    print("\nStep 2 used the variable step 1 left in the session; anomalies.csv is in /mnt/data.")


async def main(checkpoint_dir: Path) -> None:
    print(f"Model: {model_description()}", flush=True)
    checkpoint = checkpoint_dir / "team_checkpoint.json"
    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}\n", flush=True)
        await step_one(target, checkpoint)
        await step_two(target, checkpoint)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="where to write the checkpoint file"
    )
    args = parser.parse_args()
    if args.checkpoint_dir is not None:
        args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        run_main(main(args.checkpoint_dir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run_main(main(Path(tmp)))
