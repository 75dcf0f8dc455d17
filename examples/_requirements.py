"""Each example's first step: check the optional packages it needs, and say how to install them.

An example run in an environment that lacks one of its extras (the Agent Framework quickstart
after ``pip install -e '.[local,examples]'``, say) would otherwise end in a ``ModuleNotFoundError``
traceback, or dozens of lines later inside a library. Instead it prints one line naming what is
missing and the exact command that installs it, and exits with status 2 (a usage error, like the
``aca-sessions`` command line).

This module uses the standard library only, so that it can run before anything else is imported.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

__all__ = [
    "AGENT_FRAMEWORK",
    "AGENT_FRAMEWORK_INSTALL",
    "AUTOGEN",
    "AUTOGEN_INSTALL",
    "AZURE_MGMT",
    "EXIT_MISSING_PACKAGE",
    "LOCAL_POOL",
    "MCP_2",
    "MCP_AGENT_INSTALL",
    "POOL_ENDPOINT_ENV",
    "Need",
    "require",
]

AUTOGEN_INSTALL = "pip install -e '.[local,examples]'"
"""Installs what the AutoGen examples need."""
AGENT_FRAMEWORK_INSTALL = "pip install -e '.[local,agent-framework]'"
"""Installs what the Agent Framework examples need."""
MCP_AGENT_INSTALL = "pip install -e '.[local]' agent-framework-core 'mcp>=2.3,<3' 'tenacity>=9.1.4,<9.2'"
"""Installs what ``mcp_agent.py`` needs (mcp 2.x cannot share an environment with AutoGen's 1.x)."""
POOL_ENDPOINT_ENV = "ACA_POOL_MANAGEMENT_ENDPOINT"
"""Set, the examples use that pool instead of starting a local one."""

EXIT_MISSING_PACKAGE = 2
"""Exit status when a package is missing (the command line's usage-error status)."""


@dataclass(frozen=True)
class Need:
    """One thing an example imports that an optional extra provides."""

    module: str
    """The module to import to find out whether it is there."""
    label: str
    """How the message names it."""


AUTOGEN = (
    Need("autogen_agentchat", "autogen-agentchat"),
    Need("autogen_ext.models.replay", "autogen-ext"),
)
"""AutoGen's agents and model clients (the ``examples`` extra)."""
AGENT_FRAMEWORK = (Need("agent_framework", "agent-framework-core"),)
"""Microsoft Agent Framework (the ``agent-framework`` extra)."""
AZURE_MGMT = (Need("azure.mgmt.appcontainers", "azure-mgmt-appcontainers"),)
"""The ARM SDK that provisions pools (the ``examples`` extra)."""
# ``mcp.client.client`` exists from mcp 2.0 on; Agent Framework's MCP tool needs 2.x, and a 1.x
# install (AutoGen's McpWorkbench) would fail later, inside the tool.
MCP_2 = (Need("mcp.client.client", "mcp 2.x"),)
"""The MCP SDK 2.x, which Agent Framework's MCP tools need."""
_LOCAL_EXTRA = "the local session pool's packages (the 'local' extra)"
# autogen_aca_sessions.local imports its kernel machinery lazily, so importing it proves nothing:
# these are what a pool's first kernel needs.
LOCAL_POOL = tuple(
    Need(module, _LOCAL_EXTRA) for module in ("jupyter_client", "ipykernel", "psutil", "pandas", "matplotlib")
)
"""The local session pool: Jupyter kernels and the data stack the real Python pools ship."""


def require(*needs: Need, install: str, local_pool_unless: str | None = None) -> None:
    """Exit with one line and status 2 unless every module of ``needs`` imports.

    ``install`` is the command that installs all of them, as run from a clone of the repository.
    With ``local_pool_unless``, the local session pool is needed too unless that environment
    variable (the one pointing the example at another pool) is set.
    """
    if local_pool_unless is not None and not os.environ.get(local_pool_unless, "").strip():
        needs = (*needs, *LOCAL_POOL)
    missing = list(dict.fromkeys(need.label for need in needs if not _imports(need.module)))
    if missing:
        _exit_missing(missing, install)


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _exit_missing(missing: list[str], install: str) -> NoReturn:
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "this example"
    names = " and ".join(missing)
    print(f"{script} needs {names}, which is not installed; install it with: {install}", file=sys.stderr)
    raise SystemExit(EXIT_MISSING_PACKAGE)
