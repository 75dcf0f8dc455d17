"""Microsoft Agent Framework integration: a code interpreter in Azure Container Apps dynamic sessions
or Sandboxes.

Install with the ``agent-framework`` extra (``pip install 'autogen-aca-sessions[agent-framework]'``).
Built on the framework-neutral :class:`~autogen_aca_sessions.client.SessionsClient`; it never imports
AutoGen. Typical use::

    from agent_framework import Agent
    from autogen_aca_sessions.agent_framework import DynamicSessionsCodeActProvider, DynamicSessionsConfig

    config = DynamicSessionsConfig(pool_management_endpoint=endpoint)
    async with DynamicSessionsCodeActProvider(config, credential=credential) as codeact:
        agent = Agent(client=chat_client, context_providers=[codeact])
        session = agent.create_session()
        print(await agent.run("Plot y = x**2", session=session))

On Sandboxes (one sandbox per ``AgentSession``, suspended between runs, resumed from the
``AgentSession``'s serialised state in a new process) only the configuration changes::

    config = SandboxesConfig(endpoint=endpoint, subscription_id=sub, resource_group=rg, sandbox_group=group)
    async with CodeActProvider(config, credential=credential) as codeact:
        ...
"""

from __future__ import annotations

try:
    import agent_framework as _agent_framework  # noqa: F401
    import agent_framework_tools as _agent_framework_tools  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "autogen_aca_sessions.agent_framework needs Microsoft Agent Framework (agent-framework-core "
        "and agent-framework-tools): pip install 'autogen-aca-sessions[agent-framework]'"
    ) from exc

from autogen_aca_sessions.agent_framework._backend import BackendConfig, CodeBackend, RunOutcome
from autogen_aca_sessions.agent_framework._config import (
    BackendKind,
    CodeInterpreterConfig,
    DynamicSessionsConfig,
    PoolKind,
    SandboxesConfig,
)
from autogen_aca_sessions.agent_framework._functions import FunctionSource, InjectedFunction
from autogen_aca_sessions.agent_framework._provider import (
    CodeActProvider,
    DynamicSessionsCodeActProvider,
    session_tools,
)
from autogen_aca_sessions.agent_framework._sandbox_shell_executor import SandboxShellExecutor
from autogen_aca_sessions.agent_framework._sandboxes import SANDBOX_STATE_KEY, Sandboxes
from autogen_aca_sessions.agent_framework._sessions import (
    STATE_KEY,
    DynamicSessions,
    PathNotAllowedError,
    SessionSetupError,
)
from autogen_aca_sessions.agent_framework._shell_executor import DynamicSessionsShellExecutor
from autogen_aca_sessions.agent_framework._tools import (
    DownloadFileTool,
    ExecuteCodeTool,
    ListFilesTool,
    RunShellTool,
    UploadFileTool,
)
from autogen_aca_sessions.client.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    CheckpointSessionGoneError,
    CheckpointTamperedError,
    SkippedVariable,
)
from autogen_aca_sessions.client.sandbox_python import SandboxGoneError

__all__ = [
    "SANDBOX_STATE_KEY",
    "STATE_KEY",
    "BackendConfig",
    "BackendKind",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointSessionGoneError",
    "CheckpointTamperedError",
    "CodeActProvider",
    "CodeBackend",
    "CodeInterpreterConfig",
    "DownloadFileTool",
    "DynamicSessions",
    "DynamicSessionsCodeActProvider",
    "DynamicSessionsConfig",
    "DynamicSessionsShellExecutor",
    "ExecuteCodeTool",
    "FunctionSource",
    "InjectedFunction",
    "ListFilesTool",
    "PathNotAllowedError",
    "PoolKind",
    "RunOutcome",
    "RunShellTool",
    "SandboxGoneError",
    "SandboxShellExecutor",
    "Sandboxes",
    "SandboxesConfig",
    "SessionSetupError",
    "SkippedVariable",
    "UploadFileTool",
    "session_tools",
]
