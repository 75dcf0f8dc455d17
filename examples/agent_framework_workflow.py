"""An Agent Framework workflow whose steps share one dynamic session.

Two agents in a sequential workflow (``WorkflowBuilder``): a *data engineer* simulates sensor
readings, cleans them and leaves a DataFrame ``readings`` in the session; an *analyst* then works
on that same DataFrame (no file hand-over, no re-loading) and writes a report file. Both agents'
``DynamicSessionsCodeActProvider`` share one :class:`DynamicSessions` with a caller-chosen session
identifier, so every step of the workflow runs in the same interpreter::

    pip install -e '.[local,agent-framework]'
    python examples/agent_framework_workflow.py

Scripted model by default, a real one with ``OPENAI_API_KEY`` / Azure OpenAI variables (and
``pip install agent-framework-openai``); a local pool unless ``ACA_POOL_MANAGEMENT_ENDPOINT`` is set.
"""

from __future__ import annotations

import uuid

from _requirements import AGENT_FRAMEWORK, AGENT_FRAMEWORK_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AGENT_FRAMEWORK, install=AGENT_FRAMEWORK_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _agent_framework_common import CODE_HINT, chat_client, print_run, tool_failures
from _common import fail, model_description, run_main, session_pool, uses_scripted_model
from agent_framework import Agent, AgentResponse, WorkflowBuilder

from autogen_aca_sessions.agent_framework import (
    DynamicSessions,
    DynamicSessionsCodeActProvider,
    DynamicSessionsConfig,
)
from autogen_aca_sessions.agent_framework.testing import ToolCall

REPORT_NAME = "sensor_report.txt"

TASK = (
    "Simulate a day of readings from 3 temperature sensors (one reading per sensor every 10 minutes) "
    "with a few faulty spikes, drop the spikes, and keep the cleaned data in a pandas DataFrame named "
    "`readings` (columns: time, sensor, celsius). Then analyse `readings`: mean, min and max per "
    f"sensor and the warmest hour, and write a short report to {REPORT_NAME}."
)

ENGINEER_CODE = """import numpy as np
import pandas as pd

rng = np.random.default_rng(3)
times = pd.date_range("2024-07-01", periods=144, freq="10min")
frames = []
for sensor, base in [("north", 18.0), ("south", 22.0), ("roof", 25.0)]:
    daily = 4 * np.sin((np.arange(144) - 54) / 144 * 2 * np.pi)
    values = base + daily + rng.normal(0, 0.4, 144)
    values[rng.choice(144, 3, replace=False)] += 40  # faulty spikes
    frames.append(pd.DataFrame({"time": times, "sensor": sensor, "celsius": values}))
raw = pd.concat(frames, ignore_index=True)
median = raw.groupby("sensor")["celsius"].transform("median")
readings = raw[(raw["celsius"] - median).abs() < 15].reset_index(drop=True)
print(f"{len(raw)} raw readings, {len(raw) - len(readings)} spikes dropped, {len(readings)} kept")"""

ANALYST_CODE = """stats = readings.groupby("sensor")["celsius"].agg(["mean", "min", "max"]).round(2)
hourly = readings.set_index("time").groupby(pd.Grouper(freq="h"))["celsius"].mean()
warmest = hourly.idxmax()
report = (
    "Sensor report\\n\\n" + stats.to_string()
    + f"\\n\\nWarmest hour: {warmest:%H:%M} ({hourly.max():.2f} C mean over all sensors)\\n"
)
with open("sensor_report.txt", "w") as handle:
    handle.write(report)
print(report)"""

ENGINEER_TURNS = [
    ToolCall("execute_code", {"code": ENGINEER_CODE}),
    "The cleaned readings are in the DataFrame `readings` in the session.",
]
ANALYST_TURNS = [
    ToolCall("execute_code", {"code": ANALYST_CODE}),
    f"Report written to {REPORT_NAME}: per-sensor statistics and the warmest hour are above.",
]


async def main() -> None:
    print(f"Model: {model_description()}", flush=True)
    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}", flush=True)
        identifier = f"workflow-{uuid.uuid4()}"
        config = DynamicSessionsConfig(
            pool_management_endpoint=target.endpoint, timeout_seconds=120, session_identifier=identifier
        )
        async with DynamicSessions(config, credential=target.credential) as sessions:
            # One DynamicSessions behind both agents: every step runs in session `identifier`.
            engineer = Agent(
                client=chat_client(ENGINEER_TURNS),
                name="engineer",
                instructions="You prepare data. Do only the data preparation part of the task. " + CODE_HINT,
                context_providers=[DynamicSessionsCodeActProvider(sessions)],
            )
            analyst = Agent(
                client=chat_client(ANALYST_TURNS),
                name="analyst",
                instructions="You analyse the DataFrame `readings` that the engineer left in the session. "
                + CODE_HINT,
                context_providers=[DynamicSessionsCodeActProvider(sessions)],
            )
            workflow = WorkflowBuilder(start_executor=engineer).add_edge(engineer, analyst).build()
            try:
                result = await workflow.run(TASK)
            except Exception as exc:
                fail(f"the workflow raised {type(exc).__name__}: {exc}")

            responses = [output for output in result.get_outputs() if isinstance(output, AgentResponse)]
            for name, response in zip(["engineer", "analyst"], responses, strict=False):
                print_run(name, response)
                failures = tool_failures(response)
                if failures and uses_scripted_model():
                    fail(f"{name}: {len(failures)} tool call(s) failed; first: {failures[0]}")
            if len(responses) != 2:
                fail(f"expected the two agents' responses, got {len(responses)} output(s)")

            files = {entry.relative_path for entry in await sessions.list_files(None)}
            if REPORT_NAME not in files:
                fail(f"the workflow did not write {REPORT_NAME} (session files: {sorted(files)})")
            report = (await sessions.download(None, REPORT_NAME)).decode()
            # A caller-chosen identifier is the caller's to release.
            await sessions.release(identifier)

    print(f"\nBoth steps ran in one session ({identifier}); {REPORT_NAME}:\n{report}")


if __name__ == "__main__":
    run_main(main())
