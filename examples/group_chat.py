"""A planner, a coder and an executor agent share one dynamic session in a SelectorGroupChat.

The planner breaks the task into steps, the coder writes one code block per step, and the
executor agent runs each block with ``ACADynamicSessionsCodeExecutor``. Variables and files
persist in the session between steps, so later steps build on earlier ones. A selector
function fixes the turn order (planner -> coder -> executor -> coder ... -> planner), so the
run is the same with the scripted model and with a real one::

    python examples/group_chat.py

Uses a local session pool unless ``ACA_POOL_MANAGEMENT_ENDPOINT`` is set, and scripted model
turns unless ``OPENAI_API_KEY`` / Azure OpenAI settings are set (see ``_common.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _common import (
    EXECUTOR_SYSTEM_HINT,
    extract_code_result_failures,
    fail,
    model_client,
    model_description,
    run_main,
    session_pool,
    uses_scripted_model,
)
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.teams import SelectorGroupChat
from autogen_agentchat.ui import Console
from autogen_core import CancellationToken

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

TASK = (
    "Check whether two fair six-sided dice behave as theory says. Simulate 20,000 rolls of two dice "
    "with a fixed seed, tabulate how often each sum from 2 to 12 occurs next to the theoretical "
    "probability, and run a chi-square goodness-of-fit test. Save the table as /mnt/data/dice_sums.csv."
)

SCRIPTED_PLANNER_TURNS = [
    """Plan:
1. Simulate 20,000 rolls of two dice with numpy (seed 2024) and keep the sums.
2. Tabulate observed counts per sum (2-12) against the theoretical probabilities; save the table \
to /mnt/data/dice_sums.csv.
3. Compute the chi-square statistic with 10 degrees of freedom and compare it with the 5% \
critical value (18.307).
Coder, please start with step 1.""",
    """All three steps are done: the simulated frequencies match the theoretical distribution \
(see the chi-square verdict above) and the table is saved in /mnt/data/dice_sums.csv.

TERMINATE""",
]

SCRIPTED_CODER_TURNS = [
    """Step 1: simulate the rolls.

```python
import numpy as np

rng = np.random.default_rng(2024)
rolls = rng.integers(1, 7, size=(20_000, 2))
sums = rolls.sum(axis=1)
print("rolls:", len(sums), "mean sum:", round(float(sums.mean()), 3), "(theory: 7.0)")
```""",
    """Step 2: observed counts against theory, saved as CSV.

```python
import pandas as pd

ways = {s: 6 - abs(s - 7) for s in range(2, 13)}
table = pd.DataFrame(
    {
        "sum": list(ways),
        "observed": [int((sums == s).sum()) for s in ways],
        "expected": [len(sums) * n / 36 for n in ways.values()],
    }
)
table["observed_share"] = (table["observed"] / len(sums)).round(4)
table["theoretical_share"] = (table["expected"] / len(sums)).round(4)
table.to_csv("dice_sums.csv", index=False)
print(table.to_string(index=False))
```""",
    """Step 3: the chi-square goodness-of-fit test.

```python
chi2 = float((((table["observed"] - table["expected"]) ** 2) / table["expected"]).sum())
critical = 18.307  # chi-square, 10 degrees of freedom, 5% level
verdict = "consistent with fair dice" if chi2 < critical else "NOT consistent with fair dice"
print(f"chi-square = {chi2:.2f} (critical value {critical}): {verdict}")
```""",
    "All steps are implemented and ran; handing back to the planner.",
]


def select_speaker(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> str | None:
    """Fixed turn order: planner, then coder and executor alternating until the coder is done."""
    last = messages[-1]
    if last.source == "user":
        return "planner"
    if last.source == "planner":
        return "coder"
    if last.source == "executor":
        return "coder"
    if last.source == "coder":
        text = last.to_model_text() if isinstance(last, BaseChatMessage) else ""
        return "executor" if "```" in text else "planner"
    return None


async def main() -> None:
    print(f"Model: {model_description()}", flush=True)
    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}\n", flush=True)
        async with ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=target.endpoint, credential=target.credential, timeout=120
        ) as executor:
            planner = AssistantAgent(
                "planner",
                model_client=model_client(SCRIPTED_PLANNER_TURNS),
                description="Breaks the task into steps and decides when it is done.",
                system_message=(
                    "You are a planner. Break the task into short numbered steps for the coder. You never "
                    "write code. When the coder reports that every step ran, check the results and end "
                    "your message with TERMINATE."
                ),
            )
            coder = AssistantAgent(
                "coder",
                model_client=model_client(SCRIPTED_CODER_TURNS),
                description="Writes one Python code block per step.",
                system_message=(
                    "You are a coder. Implement the planner's steps one at a time, one code block per "
                    "message, and read the executor's output before the next step. When every step has "
                    "run successfully, reply without code to hand back to the planner. "
                    + EXECUTOR_SYSTEM_HINT
                ),
            )
            runner = CodeExecutorAgent("executor", code_executor=executor)
            team = SelectorGroupChat(
                [planner, coder, runner],
                model_client=model_client([]),  # never asked: select_speaker always decides
                selector_func=select_speaker,
                allow_repeated_speaker=True,
                termination_condition=TextMentionTermination("TERMINATE", sources=["planner"])
                | MaxMessageTermination(24),
            )
            try:
                result = await Console(team.run_stream(task=TASK))
            except Exception as exc:
                fail(f"the team run raised {type(exc).__name__}: {exc}")

            failures = extract_code_result_failures(result.messages, "executor")
            if failures and uses_scripted_model():
                fail(f"{len(failures)} code execution(s) failed; first:\n{failures[0]}")
            executions = sum(1 for m in result.messages if m.source == "executor")
            saved = await executor.get_file_list(CancellationToken())
            if "dice_sums.csv" not in saved:
                fail(f"/mnt/data/dice_sums.csv was not written (files: {saved})")

    print(f"\nStop reason: {result.stop_reason}")
    print(f"{executions} code executions in one session; files in /mnt/data: {', '.join(sorted(saved))}")


if __name__ == "__main__":
    run_main(main())
