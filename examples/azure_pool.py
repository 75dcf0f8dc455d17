"""Run code in a real Azure Container Apps session pool with DefaultAzureCredential.

Every other example runs against a local session pool by default. This one talks to Azure
only, to show what a real deployment needs:

1. A session pool (code interpreter, Python)::

       az containerapp sessionpool create -n mypool -g my-rg --location westus2 \\
           --container-type PythonLTS --max-sessions 100 --cooldown-period 300 \\
           --network-status EgressDisabled

2. The role "Azure ContainerApps Session Executor" on that pool for the identity the code runs
   as (you, a managed identity, a service principal). Without it every call gets HTTP 403::

       az role assignment create --role "Azure ContainerApps Session Executor" \\
           --assignee <user, group or principal object id> \\
           --scope $(az containerapp sessionpool show -n mypool -g my-rg --query id -o tsv)

3. The pool management endpoint in ``ACA_POOL_MANAGEMENT_ENDPOINT``::

       export ACA_POOL_MANAGEMENT_ENDPOINT=$(az containerapp sessionpool show -n mypool -g my-rg \\
           --query properties.poolManagementEndpoint -o tsv)

4. A credential ``DefaultAzureCredential`` can find: ``az login`` on a workstation, a managed
   identity in Azure, or the ``AZURE_CLIENT_ID`` / ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_SECRET``
   variables for a service principal. Tokens are requested for ``https://dynamicsessions.io/.default``.

Then::

    python examples/azure_pool.py

Without ``ACA_POOL_MANAGEMENT_ENDPOINT`` the example prints these steps and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import sys

ROLE = "Azure ContainerApps Session Executor"

SETUP_HELP = f"""ACA_POOL_MANAGEMENT_ENDPOINT is not set, so there is no Azure session pool to connect to.

To run this example against Azure:
  1. Create a Python session pool:
       az containerapp sessionpool create -n mypool -g my-rg --location westus2 \\
           --container-type PythonLTS --max-sessions 100 --cooldown-period 300 --network-status EgressDisabled
  2. Grant the role "{ROLE}" on the pool to the identity that runs the code:
       az role assignment create --role "{ROLE}" --assignee <object id> \\
           --scope $(az containerapp sessionpool show -n mypool -g my-rg --query id -o tsv)
  3. Set the pool management endpoint:
       export ACA_POOL_MANAGEMENT_ENDPOINT=$(az containerapp sessionpool show -n mypool -g my-rg \\
           --query properties.poolManagementEndpoint -o tsv)
  4. Sign in so DefaultAzureCredential finds a credential (az login, a managed identity, or AZURE_CLIENT_ID,
     AZURE_TENANT_ID and AZURE_CLIENT_SECRET), then run: python examples/azure_pool.py

No Azure subscription? Every other example runs against a local session pool (python examples/quickstart.py),
and `aca-sessions serve` starts one that any client of the real service can use."""

PROBE = """
import platform, sys
from importlib import metadata

packages = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
print("python", platform.python_version(), "on", platform.system())
print("cwd", __import__("os").getcwd())
print(len(packages), "packages; pandas", packages.get("pandas"), "numpy", packages.get("numpy"))
"""


async def main(endpoint: str) -> int:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock
    from azure.identity.aio import DefaultAzureCredential

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor
    from autogen_aca_sessions.client import PermissionDeniedError, SessionsError

    print(f"Pool: {endpoint}")
    # The async credential keeps token requests off the event loop; the executor refreshes
    # tokens before they expire.
    async with DefaultAzureCredential() as credential:
        try:
            async with ACADynamicSessionsCodeExecutor(
                pool_management_endpoint=endpoint, credential=credential, timeout=60
            ) as executor:
                result = await executor.execute_code_blocks(
                    [CodeBlock(code=PROBE, language="python")], CancellationToken()
                )
                print(result.output.strip())
                print(f"exit code {result.exit_code}; session {executor.session_id} (released on exit)")
                return 0 if result.exit_code == 0 else 1
        except PermissionDeniedError as exc:
            print(
                f"\n403 from the pool: {exc}\nThe identity needs the role '{ROLE}' on the pool.",
                file=sys.stderr,
            )
            return 1
        except SessionsError as exc:
            print(f"\nThe pool refused the request: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    pool_endpoint = os.environ.get("ACA_POOL_MANAGEMENT_ENDPOINT", "").strip()
    if not pool_endpoint:
        print(SETUP_HELP)
        sys.exit(0)
    sys.exit(asyncio.run(main(pool_endpoint)))
