"""An Agent Framework agent that keeps its work in an ACA sandbox, suspended between turns.

The conversation's sandbox holds a Python interpreter whose variables persist. When a run ends
the ``CodeActProvider`` suspends the sandbox (memory kept, nothing running, nothing billed for
CPU); the next turn's first call resumes it. Runs anywhere with no Azure subscription and no
API key::

    pip install -e '.[local,agent-framework]'
    python examples/agent_framework_sandbox.py

What happens:

1. A local server starts with a sandbox group (``LocalSessionsServer``: the ACA Sandboxes data
   plane on this machine, each sandbox isolated by bubblewrap).
2. Turn 1: an analyst agent simulates a week of web-shop orders in the sandbox and keeps them in
   the variable ``orders``. The run ends; the sandbox is suspended (its state is printed).
3. The conversation is saved with ``AgentSession.to_dict()`` (the sandbox id is in its state) and
   the agent, its provider and its connection are thrown away, as when a process ends.
4. Turn 2: a new provider and a new agent, given only the saved conversation, continue: the
   model's code uses ``orders`` straight from the resumed sandbox's memory, and a shell command
   shows the file the first turn wrote. The sandbox is suspended again, then deleted.

With ``OPENAI_API_KEY`` (or ``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_DEPLOYMENT``) and
``pip install agent-framework-openai`` a real model writes the code; without, a scripted model
replays the turns below, whose code really runs. With ``ACA_SANDBOXES_ENDPOINT``,
``ACA_SANDBOXES_SUBSCRIPTION_ID``, ``ACA_SANDBOXES_RESOURCE_GROUP`` and ``ACA_SANDBOX_GROUP`` the
code runs in that sandbox group instead (credential: ``ACA_SANDBOXES_API_KEY`` for a local server,
else ``DefaultAzureCredential``). Exits non-zero when any step fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from _requirements import AGENT_FRAMEWORK, AGENT_FRAMEWORK_INSTALL, require

SANDBOXES_ENDPOINT_ENV = "ACA_SANDBOXES_ENDPOINT"
"""Set, the example uses that sandbox group instead of starting a local server."""

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AGENT_FRAMEWORK, install=AGENT_FRAMEWORK_INSTALL, local_pool_unless=SANDBOXES_ENDPOINT_ENV)

from _agent_framework_common import chat_client, print_run, tool_failures
from _common import fail, model_description, run_main, uses_scripted_model
from agent_framework import Agent, AgentSession

from autogen_aca_sessions.agent_framework import (
    SANDBOX_STATE_KEY,
    CodeActProvider,
    Sandboxes,
    SandboxesConfig,
)
from autogen_aca_sessions.agent_framework.testing import ToolCall
from autogen_aca_sessions.client import TokenSource

GROUP = "agent-framework-example"

HINT = (
    "Use the execute_code tool to run Python in your sandbox and run_shell for shell commands. "
    "Variables persist between calls and between turns. Only the standard library is installed: "
    "no pandas. Print what you need to see. Be brief."
)

TURN_1 = (
    "Simulate a week of web-shop orders (day, product, quantity, unit price) with the standard "
    "library, keep them in a list of dicts named `orders`, save them as orders.json, and print how "
    "many there are and the total revenue."
)
TURN_2 = (
    "Using the `orders` you already have in memory (do not reload or regenerate them), give the "
    "revenue per product and the best day, and show the file you saved last time."
)

SIMULATE = """import json, random

random.seed(7)
prices = {"kettle": 39.0, "toaster": 29.5, "blender": 64.0}
days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
orders = [
    {"day": day, "product": product, "quantity": random.randint(1, 4), "unit_price": price}
    for day in days
    for product, price in prices.items()
    for _ in range(random.randint(2, 6))
]
with open("orders.json", "w") as handle:
    json.dump(orders, handle)
revenue = sum(o["quantity"] * o["unit_price"] for o in orders)
print(f"{len(orders)} orders, revenue {revenue:,.2f}")"""

ANALYSE = """from collections import defaultdict

by_product = defaultdict(float)
by_day = defaultdict(float)
for o in orders:  # still in memory: the sandbox was suspended, not restarted
    by_product[o["product"]] += o["quantity"] * o["unit_price"]
    by_day[o["day"]] += o["quantity"] * o["unit_price"]
for product, total in sorted(by_product.items(), key=lambda item: -item[1]):
    print(f"{product:8} {total:9,.2f}")
best = max(by_day, key=by_day.get)
print(f"Best day: {best} ({by_day[best]:,.2f})")"""

TURN_1_SCRIPT = [
    ToolCall("execute_code", {"code": SIMULATE}),
    "The week's orders are in `orders` (and orders.json); the count and revenue are above.",
]
TURN_2_SCRIPT = [
    ToolCall("execute_code", {"code": ANALYSE}),
    ToolCall("run_shell", {"command": "ls -l orders.json"}),
    "Revenue per product and the best day are above, computed from the orders kept in memory.",
]


@dataclass(frozen=True)
class SandboxGroup:
    """The sandbox group the example runs in."""

    config: SandboxesConfig
    """Where it is, and how conversations use it."""
    credential: TokenSource | None
    """How requests authenticate (None: DefaultAzureCredential)."""
    description: str
    """One line for the user."""


@asynccontextmanager
async def sandbox_group() -> AsyncIterator[SandboxGroup]:
    """The configured sandbox group, or a local server's for the ``async with`` block."""
    endpoint = os.environ.get(SANDBOXES_ENDPOINT_ENV, "").strip()
    if endpoint:
        names = ("ACA_SANDBOXES_SUBSCRIPTION_ID", "ACA_SANDBOXES_RESOURCE_GROUP", "ACA_SANDBOX_GROUP")
        missing = [name for name in names if not os.environ.get(name, "").strip()]
        if missing:
            fail(f"{SANDBOXES_ENDPOINT_ENV} needs {', '.join(missing)} as well")
        key = os.environ.get("ACA_SANDBOXES_API_KEY", "").strip() or None
        config = SandboxesConfig(
            endpoint=endpoint,
            subscription_id=os.environ["ACA_SANDBOXES_SUBSCRIPTION_ID"].strip(),
            resource_group=os.environ["ACA_SANDBOXES_RESOURCE_GROUP"].strip(),
            sandbox_group=os.environ["ACA_SANDBOX_GROUP"].strip(),
            timeout_seconds=120,
        )
        how = "key from ACA_SANDBOXES_API_KEY" if key else "DefaultAzureCredential"
        yield SandboxGroup(config, key, f"sandbox group {config.sandbox_group} at {endpoint} ({how})")
        return

    from autogen_aca_sessions.local import LocalSessionsServer
    from autogen_aca_sessions.local.hosting.server import LOCAL_RESOURCE_GROUP, LOCAL_SUBSCRIPTION

    async with LocalSessionsServer() as server:
        await server.create_sandbox_group(GROUP)
        config = SandboxesConfig(
            endpoint=server.base_url,
            subscription_id=LOCAL_SUBSCRIPTION,
            resource_group=LOCAL_RESOURCE_GROUP,
            sandbox_group=GROUP,
            timeout_seconds=120,
        )
        yield SandboxGroup(config, server.api_key, f"local sandbox group {GROUP} at {server.base_url}")


async def run_turn(group: SandboxGroup, conversation: AgentSession, task: str, script: list[Any]) -> None:
    """One turn with a fresh provider and agent (nothing carried over but ``conversation``)."""
    async with CodeActProvider(group.config, credential=group.credential) as codeact:
        agent = Agent(
            client=chat_client(script),
            name="analyst",
            instructions="You are a careful data analyst. " + HINT,
            context_providers=[codeact],
        )
        try:
            response = await agent.run(task, session=conversation)
        except Exception as exc:  # a model or transport error ends the run: say which
            fail(f"the agent run raised {type(exc).__name__}: {exc}")
        print_run("analyst", response)
        failures = tool_failures(response)
        if failures and uses_scripted_model():
            fail(f"{len(failures)} tool call(s) failed; first: {failures[0]}")
        # The provider's after-run hook has suspended the sandbox by now.
        sandboxes = codeact.sessions  # a Sandboxes: the provider was given a SandboxesConfig
        state = await sandboxes.state(conversation)
        sandbox_id = sandboxes.sandbox_id_for(conversation)
        print(f"\nSandbox {sandbox_id} after the turn: {state.value if state else 'none'}\n", flush=True)


async def main() -> None:
    print(f"Model: {model_description()}", flush=True)
    async with sandbox_group() as group:
        print(f"Sandboxes: {group.description}\n", flush=True)

        conversation = AgentSession()
        await run_turn(group, conversation, TURN_1, TURN_1_SCRIPT)

        # What a process would write to disk before it ends, and the next one read back.
        saved = json.dumps(conversation.to_dict())
        entry = json.loads(saved)["state"][SANDBOX_STATE_KEY]
        print(f"Saved the conversation ({len(saved):,} bytes of JSON); its sandbox: {entry}\n", flush=True)
        restored = AgentSession.from_dict(json.loads(saved))

        await run_turn(group, restored, TURN_2, TURN_2_SCRIPT)

        async with Sandboxes(group.config, credential=group.credential) as sandboxes:
            sandbox_id = sandboxes.sandbox_id_for(restored)
            await sandboxes.release(restored)
        print(f"Sandbox {sandbox_id} deleted.")


if __name__ == "__main__":
    run_main(main())
