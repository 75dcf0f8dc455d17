"""Restart the executor between unrelated tasks so nothing leaks from one to the next.

One ``CodeExecutorAgent`` (with its own model: it writes the code, runs it and sums up) serves
two tasks for two different customers. Between them ``await executor.restart()`` moves the
executor to a fresh session: the first task's variables and files in ``/mnt/data`` are gone,
and the old session is released instead of holding a pool slot until it times out::

    python examples/restart_between_tasks.py

Uses a local session pool unless ``ACA_POOL_MANAGEMENT_ENDPOINT`` is set, and scripted model
turns unless ``OPENAI_API_KEY`` / Azure OpenAI settings are set (see ``_common.py``).
"""

from __future__ import annotations

import warnings

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _common import EXECUTOR_SYSTEM_HINT, fail, model_client, model_description, run_main, session_pool
from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.ui import Console
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

FIRST_TASK = (
    "Customer A: build a small table of their five invoices (ids INV-1..INV-5, amounts 120, 75.5, 310, "
    "42, 98.25), save it as /mnt/data/invoices_customer_a.csv and report the total."
)
SECOND_TASK = (
    "Customer B: before doing anything for this customer, check that nothing from earlier work is "
    "left in the session: list the files in /mnt/data and say whether a variable named `invoices` exists."
)

# A CodeExecutorAgent with a model asks it twice per task: once for the code, once to reflect
# on the execution result.
SCRIPTED_TURNS = [
    """```python
import pandas as pd

invoices = pd.DataFrame(
    {"invoice": [f"INV-{i}" for i in range(1, 6)], "amount": [120, 75.5, 310, 42, 98.25]}
)
invoices.to_csv("invoices_customer_a.csv", index=False)
print(invoices.to_string(index=False))
print("total:", invoices["amount"].sum())
```""",
    "Customer A's five invoices are saved in /mnt/data/invoices_customer_a.csv; they total 645.75.",
    """```python
import os

print("files in /mnt/data:", sorted(os.listdir()))
print("variable `invoices` exists:", "invoices" in globals())
```""",
    "The session is clean: no files from earlier work and no `invoices` variable, so Customer B's "
    "work starts from scratch.",
]

LEAK_CHECK = """
import os
print(sorted(os.listdir()), "invoices" in globals())
"""


async def main() -> None:
    print(f"Model: {model_description()}", flush=True)
    cancel = CancellationToken()
    async with session_pool(ready_sessions=2) as target:
        print(f"Pool: {target.description}\n", flush=True)
        async with ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=target.endpoint, credential=target.credential, timeout=60
        ) as executor:
            agent = CodeExecutorAgent(
                "analyst",
                code_executor=executor,
                model_client=model_client(SCRIPTED_TURNS),
                system_message="You are an analyst who answers by running code. " + EXECUTOR_SYSTEM_HINT,
            )

            await Console(agent.run_stream(task=FIRST_TASK))
            first_session = executor.session_id
            before = await executor.execute_code_blocks(
                [CodeBlock(code=LEAK_CHECK, language="python")], cancel
            )
            print(f"\n--- after task 1, session {first_session}: {before.stdout.strip()}")
            if "invoices_customer_a.csv" not in before.stdout or "True" not in before.stdout:
                fail(f"task 1 did not leave its file and variable behind: {before.output!r}")

            await executor.restart()
            second_session = executor.session_id
            print(f"--- restart(): session {first_session} -> {second_session}\n")

            await Console(agent.run_stream(task=SECOND_TASK))
            after = await executor.execute_code_blocks(
                [CodeBlock(code=LEAK_CHECK, language="python")], cancel
            )
            print(f"\n--- after task 2, session {second_session}: {after.stdout.strip()}")

    if second_session == first_session:
        fail("restart() kept the same session id")
    if after.exit_code != 0 or after.stdout.strip() != "[] False":
        fail(f"state from task 1 is visible after restart(): {after.output!r}")
    print("\nNo state leaked between the tasks: restart() gave task 2 a fresh session.")


if __name__ == "__main__":
    run_main(main())
