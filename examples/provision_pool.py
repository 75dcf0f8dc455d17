"""Provision a session pool through the management plane, run an agent in it, delete it.

What teams that make a pool per tenant or per test run do, with the Azure SDK
(``azure-mgmt-appcontainers``) and nothing else::

    pip install -e '.[local,examples]'
    python examples/provision_pool.py

1. ``ContainerAppsAPIClient(credential, subscription_id, base_url=...)``
   ``.container_apps_session_pools.begin_create_or_update(...)`` creates a PythonLTS pool and
   waits for the long-running operation (``ARMPolling``); the result carries the pool's
   ``pool_management_endpoint``.
2. An AutoGen team (an ``AssistantAgent`` and a ``CodeExecutorAgent`` with
   ``ACADynamicSessionsCodeExecutor``) runs code in that pool.
3. ``begin_delete(...)`` removes the pool; ``get`` then answers 404.

By default everything happens on this machine: a ``LocalSessionsServer`` serves the ARM
management plane and the pool's data plane on one port. It serves TLS, because the SDK's
bearer-token policy refuses plain http; the SDK trusts the server's certificate through
``connection_verify=<its CA file>``.

On Azure instead, set ``AZURE_SUBSCRIPTION_ID`` and ``ACA_RESOURCE_GROUP`` (optionally
``ACA_LOCATION``, default ``westus2``, and ``ACA_POOL_NAME``). ``DefaultAzureCredential`` must find
an identity allowed to create ``Microsoft.App/sessionPools`` in that resource group and holding
"Azure ContainerApps Session Executor" on the new pool (a role assignment takes a minute to apply).

The model is scripted unless ``OPENAI_API_KEY`` (or Azure OpenAI) is set, as in every example.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from _requirements import AUTOGEN, AUTOGEN_INSTALL, AZURE_MGMT, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, *AZURE_MGMT, install=AUTOGEN_INSTALL, local_pool_unless="AZURE_SUBSCRIPTION_ID")

from _common import (
    EXECUTOR_SYSTEM_HINT,
    FINISH_HINT,
    extract_code_result_failures,
    fail,
    model_client,
    model_description,
    run_main,
    uses_scripted_model,
)
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_agentchat.ui import Console
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.appcontainers import ContainerAppsAPIClient, models

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor
from autogen_aca_sessions.client import SessionsClient

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

TASK = (
    "Estimate pi with a Monte Carlo simulation of 200,000 random points using NumPy, "
    "and report the estimate and its error."
)

SCRIPTED_TURNS = [
    """I'll sample points in the unit square and count those inside the quarter circle.

```python
import numpy as np

rng = np.random.default_rng(7)
points = rng.random((200_000, 2))
inside = (points ** 2).sum(axis=1) <= 1.0
estimate = 4 * inside.mean()
print(f"pi ~ {estimate:.5f} (error {abs(estimate - np.pi):.5f})")
```""",
    """The simulation ran in the freshly provisioned pool; the estimate and its error are above.

TERMINATE""",
]


@dataclass
class ManagementTarget:
    """Where pools are provisioned."""

    client: ContainerAppsAPIClient
    """The management client (local server or Azure)."""
    resource_group: str
    """The resource group pools go into."""
    location: str
    """The region of new pools."""
    data_credential: Any
    """What the executor authenticates to the pool's data plane with."""
    ssl: Any
    """The ``SSLContext`` trusting the local server (None for Azure)."""
    description: str
    """One line for the user."""


@asynccontextmanager
async def management_target() -> AsyncIterator[ManagementTarget]:
    """The local server by default; Azure when ``AZURE_SUBSCRIPTION_ID`` and ``ACA_RESOURCE_GROUP``
    are set."""
    subscription = os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip()
    resource_group = os.environ.get("ACA_RESOURCE_GROUP", "").strip()
    if subscription and resource_group:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        with ContainerAppsAPIClient(credential, subscription) as client:
            yield ManagementTarget(
                client=client,
                resource_group=resource_group,
                location=os.environ.get("ACA_LOCATION", "westus2"),
                data_credential=credential,
                ssl=None,
                description=f"Azure subscription {subscription}, resource group {resource_group}",
            )
        credential.close()
        return

    from autogen_aca_sessions import LocalSessionsServer
    from autogen_aca_sessions.local import PoolConfig

    sandbox = os.environ.get("ACA_SESSIONS_SANDBOX", "auto").strip() or "auto"
    async with LocalSessionsServer(tls=True, pool_defaults=PoolConfig(sandbox=sandbox)) as server:
        client = ContainerAppsAPIClient(
            server.credential,
            "00000000-0000-0000-0000-000000000000",
            base_url=server.base_url,
            connection_verify=str(server.tls_ca_file),
        )
        with client:
            yield ManagementTarget(
                client=client,
                resource_group="examples",
                location="local",
                data_credential=server.credential,
                ssl=server.ssl_context(),
                description=f"local management plane at {server.base_url} (TLS, CA {server.tls_ca_file})",
            )


def _pool_model(location: str) -> models.SessionPool:
    return models.SessionPool(
        location=location,
        pool_management_type="Dynamic",
        container_type="PythonLTS",
        scale_configuration=models.ScaleConfiguration(max_concurrent_sessions=5, ready_session_instances=1),
        dynamic_pool_configuration=models.DynamicPoolConfiguration(
            lifecycle_configuration=models.LifecycleConfiguration(
                lifecycle_type="Timed", cooldown_period_in_seconds=300
            )
        ),
        session_network_configuration=models.SessionNetworkConfiguration(status="EgressDisabled"),
    )


async def run_agent(endpoint: str, target: ManagementTarget) -> int:
    """Run the team in the pool; returns the number of failed executions."""
    sessions = SessionsClient(endpoint, target.data_credential, ssl=target.ssl)
    async with ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=endpoint, credential=target.data_credential, client=sessions, timeout=120
    ) as executor:
        system = EXECUTOR_SYSTEM_HINT + FINISH_HINT
        analyst = AssistantAgent("analyst", model_client=model_client(SCRIPTED_TURNS), system_message=system)
        runner = CodeExecutorAgent("executor", code_executor=executor)
        team = RoundRobinGroupChat(
            [analyst, runner],
            termination_condition=TextMentionTermination("TERMINATE") | MaxMessageTermination(8),
        )
        result = await Console(team.run_stream(task=TASK))
        failures = extract_code_result_failures(result.messages, "executor")
        ran = [m for m in result.messages if getattr(m, "source", None) == "executor"]
        if not ran:
            fail("the executor never ran any code")
    await sessions.close()
    return len(failures)


async def main() -> None:
    print(f"Model: {model_description()}")
    async with management_target() as target:
        print(f"Management plane: {target.description}")
        pools = target.client.container_apps_session_pools
        name = os.environ.get("ACA_POOL_NAME", "").strip() or f"example{uuid.uuid4().hex[:8]}"
        print(f"Creating session pool {name} in {target.resource_group}...")
        poller = await asyncio.to_thread(
            pools.begin_create_or_update, target.resource_group, name, _pool_model(target.location)
        )
        pool = await asyncio.to_thread(poller.result)
        endpoint = pool.pool_management_endpoint
        state = getattr(pool.provisioning_state, "value", pool.provisioning_state)
        print(f"Pool {pool.name}: provisioningState {state}; endpoint {endpoint}")
        if not endpoint:
            fail("the created pool has no poolManagementEndpoint")
        try:
            failed = await run_agent(endpoint, target)
        finally:
            print(f"Deleting session pool {name}...")
            await asyncio.to_thread(lambda: pools.begin_delete(target.resource_group, name).result())
        try:
            await asyncio.to_thread(pools.get, target.resource_group, name)
        except ResourceNotFoundError:
            print(f"Pool {name} deleted (GET answers 404).")
        else:
            fail(f"the pool {name} still exists after its deletion")
        if failed and uses_scripted_model():
            fail(f"{failed} execution(s) failed")


if __name__ == "__main__":
    run_main(main())
