"""Progress of a long block, shown while it runs: an AutoGen agent on an ACA sandbox.

Runs anywhere with no Azure subscription and no API key::

    pip install -e '.[local,examples]'
    python examples/stream_sandbox_progress.py

What happens:

1. A local server starts with a sandbox group (the ACA Sandboxes data plane on this machine,
   each sandbox a bubblewrap container).
2. A ``StreamingCodeExecutorAgent`` (AutoGen's ``CodeExecutorAgent`` plus output events) writes
   a block that takes a few seconds and prints a line per step; ``ACASandboxCodeExecutor`` runs
   it in the sandbox with ``on_output=relay_to_agent``.
3. Each line reaches the console as the block prints it (``CodeOutputEvent``), before the
   block's result (``CodeExecutionEvent``) and the agent's summary.

With ``OPENAI_API_KEY`` (or ``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_DEPLOYMENT``) a real
model writes the code; without, a scripted model replays the turns below, whose code really
runs. Dynamic sessions cannot do this: their data plane answers a block once, when it ends.
"""

from __future__ import annotations

import warnings

from _requirements import AUTOGEN, AUTOGEN_INSTALL, LOCAL_POOL, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, *LOCAL_POOL, install=AUTOGEN_INSTALL)

from _common import model_client, model_description, run_main
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import CodeExecutionEvent, CodeGenerationEvent, TextMessage

from autogen_aca_sessions.client.sandboxes import SandboxesClient
from autogen_aca_sessions.executor import ACASandboxCodeExecutor
from autogen_aca_sessions.executor.streaming_agent import (
    CodeOutputEvent,
    StreamingCodeExecutorAgent,
    relay_to_agent,
)
from autogen_aca_sessions.local import LocalSessionsServer

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

SUB = "00000000-0000-0000-0000-000000000000"
TASK = (
    "Simulate a five-epoch training run that takes a few seconds, printing the loss after each "
    "epoch, then report the final loss."
)
SCRIPTED_TURNS = [
    """I'll run the training loop and print the loss as it goes.

```python
import time

loss = 1.0
for epoch in range(1, 6):
    time.sleep(0.6)  # one epoch of work
    loss *= 0.55
    print(f"epoch {epoch}/5: loss {loss:.4f}")
final_loss = loss
```""",
    "Training finished after 5 epochs; the final loss is 0.0503.",
]


async def main() -> None:
    print(f"Model: {model_description()}")
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group("progress", subscription=SUB, resource_group="examples")
        async with SandboxesClient(
            server.base_url,
            subscription_id=SUB,
            resource_group="examples",
            sandbox_group="progress",
            credential=server.api_key,
        ) as client:
            executor = ACASandboxCodeExecutor(client, timeout=120, on_output=relay_to_agent)
            agent = StreamingCodeExecutorAgent(
                "trainer", code_executor=executor, model_client=model_client(SCRIPTED_TURNS)
            )
            try:
                async for item in agent.run_stream(task=TASK):
                    if isinstance(item, CodeGenerationEvent):
                        print(f"--- the model wrote a block; running it in sandbox\n{item.content}\n")
                    elif isinstance(item, CodeOutputEvent):
                        # As the block prints: a chunk may be part of a line.
                        print(item.content, end="", flush=True)
                    elif isinstance(item, CodeExecutionEvent):
                        print(f"--- the block ended with exit code {item.result.exit_code}")
                    elif isinstance(item, TaskResult):
                        last = item.messages[-1]
                        if isinstance(last, TextMessage):
                            print(f"--- {last.source}: {last.content}")
            finally:
                await executor.stop()


if __name__ == "__main__":
    run_main(main())
