"""Checkpoint a session's work, then carry on in a new session after the old one is gone.

A dynamic session ends when the executor releases it, after the pool's idle cooldown, or with
the process: its variables and files go with it. ``await executor.checkpoint(path)`` keeps them
in a local file (the files of ``/mnt/data`` and every variable that pickles, signed with your
checkpoint key), and ``await executor.restore(path)`` puts them into another session later, in
this process or another one.

This example lets an AutoGen team fit a model to sensor readings in one session, checkpoints
it, and stops (the session is deleted). A new executor, in a new session, restores the
checkpoint, and a new team continues from the DataFrame and the fitted model still in memory
and the CSV still in ``/mnt/data``. It prints what the checkpoint could not keep::

    python examples/checkpoint_dynamic_session.py

The checkpoint is signed with the key in ``ACA_SESSIONS_CHECKPOINT_KEY``, or else a key made
once in ``~/.config/autogen-aca-sessions/checkpoint.key``; a restore refuses a file that this
key did not sign, and unpickles nothing in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _common import (
    EXECUTOR_SYSTEM_HINT,
    FINISH_HINT,
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
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_agentchat.ui import Console

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor
from autogen_aca_sessions.executor import CheckpointInfo

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

TASK_1 = (
    "Task 1 of 2. Simulate 60 days of daily energy use for a building (numpy, seed 3): a base load of "
    "400 kWh rising 2.5 kWh a day, plus noise. Keep it in a pandas DataFrame named `usage`, fit a "
    "linear trend (numpy.polyfit) into `trend`, and save the data to usage.csv. Keep an open log "
    "file `log` for notes."
)
TASK_2 = (
    "Task 2 of 2. Using `usage` and `trend` from task 1 (they are still in the session), forecast the "
    "next 14 days and save the forecast to forecast.csv next to usage.csv."
)

SCRIPTED_TASK_1 = [
    """```python
import numpy as np
import pandas as pd

rng = np.random.default_rng(3)
days = np.arange(60)
usage = pd.DataFrame({"day": days, "kwh": 400 + 2.5 * days + rng.normal(0, 12, len(days))})
trend = np.polyfit(usage.day, usage.kwh, 1)
usage.to_csv("usage.csv", index=False)
log = open("notes.log", "a")
log.write("fitted a linear trend\\n")
log.flush()
print(f"slope {trend[0]:.2f} kWh/day, intercept {trend[1]:.1f} kWh")
```""",
    """`usage` and `trend` are in the session and the data is in usage.csv. Task 1 is done.

TERMINATE""",
]

SCRIPTED_TASK_2 = [
    """`usage` and `trend` are still in the session, so I forecast from them directly.

```python
ahead = np.arange(usage.day.max() + 1, usage.day.max() + 15)
forecast = pd.DataFrame({"day": ahead, "kwh": np.polyval(trend, ahead).round(1)})
forecast.to_csv("forecast.csv", index=False)
print(f"{len(usage)} days of history (usage.csv: {len(pd.read_csv('usage.csv'))} rows)")
print(f"forecast for day {ahead[-1]}: {forecast.kwh.iloc[-1]} kWh")
```""",
    """The 14-day forecast is in forecast.csv.

TERMINATE""",
]


def build_team(executor: ACADynamicSessionsCodeExecutor, scripted_turns: list[str]) -> RoundRobinGroupChat:
    analyst = AssistantAgent(
        "analyst",
        model_client=model_client(scripted_turns),
        system_message="You are an energy analyst. " + EXECUTOR_SYSTEM_HINT + FINISH_HINT,
    )
    runner = CodeExecutorAgent("executor", code_executor=executor)
    return RoundRobinGroupChat(
        [analyst, runner],
        termination_condition=TextMentionTermination("TERMINATE", sources=["analyst"])
        | MaxMessageTermination(10),
    )


async def run(team: RoundRobinGroupChat, task: str) -> None:
    try:
        result = await Console(team.run_stream(task=task))
    except Exception as exc:
        fail(f"the team run raised {type(exc).__name__}: {exc}")
    failures = extract_code_result_failures(result.messages, "executor")
    if failures and uses_scripted_model():
        fail(f"{len(failures)} code execution(s) failed; first:\n{failures[0]}")


def describe(info: CheckpointInfo, verb: str) -> None:
    print(f"\n=== {verb} {info.path.name} ({info.size_bytes:,} bytes, pickled with {info.pickler})")
    print(f"    variables: {', '.join(info.variables) or '-'}")
    print(f"    modules:   {', '.join(f'{name}={module}' for name, module in info.modules.items()) or '-'}")
    print(f"    files:     {', '.join(info.files) or '-'}")
    for skipped in info.skipped:
        print(f"    NOT KEPT:  {skipped.name} ({skipped.type}): {skipped.reason}")
    print(flush=True)


async def main(checkpoint_dir: Path) -> None:
    print(f"Model: {model_description()}", flush=True)
    checkpoint = checkpoint_dir / "energy.ckpt"
    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}\n", flush=True)

        async with ACADynamicSessionsCodeExecutor(target.endpoint, target.credential) as first:
            await run(build_team(first, SCRIPTED_TASK_1), TASK_1)
            describe(await first.checkpoint(checkpoint), "Checkpointed session's work to")
            first_session = first.session_id
        print(f"=== Session {first_session} was released: its interpreter and files are gone.\n")

        async with ACADynamicSessionsCodeExecutor(target.endpoint, target.credential) as second:
            restored = await second.restore(checkpoint)
            describe(restored, f"Restored into the new session {second.session_id} from")
            missing = {"usage", "trend"} - set(restored.variables)
            if missing:
                fail(f"the restore did not bring back {sorted(missing)}")
            await run(build_team(second, SCRIPTED_TASK_2), TASK_2)
            files = await second.get_file_list()
            if not {"usage.csv", "forecast.csv"} <= set(files):
                fail(f"expected usage.csv and forecast.csv in /mnt/data, found {files}")
    print(
        "\nThe new team continued from the restored DataFrame, trend and usage.csv; forecast.csv is written."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="where to write the checkpoint file (kept)"
    )
    args = parser.parse_args()
    if args.checkpoint_dir is not None:
        args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        run_main(main(args.checkpoint_dir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run_main(main(Path(tmp)))
