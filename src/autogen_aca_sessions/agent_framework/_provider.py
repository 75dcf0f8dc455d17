"""The CodeAct context provider: injects the session tools and instructions into every run, and
lets the backend act when a run ends (a sandbox is suspended)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, cast, overload

from agent_framework import AgentSession, ContextProvider, FunctionTool, SessionContext

from autogen_aca_sessions.agent_framework._backend import CodeBackend
from autogen_aca_sessions.agent_framework._config import DynamicSessionsConfig, PoolKind, SandboxesConfig
from autogen_aca_sessions.agent_framework._functions import InjectedFunction
from autogen_aca_sessions.agent_framework._instructions import build_instructions
from autogen_aca_sessions.agent_framework._sandboxes import Sandboxes
from autogen_aca_sessions.agent_framework._sessions import DynamicSessions
from autogen_aca_sessions.agent_framework._tools import (
    DownloadFileTool,
    ExecuteCodeTool,
    ListFilesTool,
    RunShellTool,
    UploadFileTool,
)
from autogen_aca_sessions.client import SessionFile, SessionsError, TokenSource
from autogen_aca_sessions.client.closing import AsyncClosing

__all__ = ["CodeActProvider", "DynamicSessionsCodeActProvider", "session_tools"]

logger = logging.getLogger(__name__)

BackendT = TypeVar("BackendT", bound=CodeBackend)
"""The backend a provider runs on: ``DynamicSessions``, ``Sandboxes`` or another ``CodeBackend``."""


def session_tools(sessions: CodeBackend) -> list[FunctionTool]:
    """The tools for a backend: ``execute_code`` (Python) and/or ``run_shell`` (shell), as the
    backend runs them (a Python pool, a shell pool, a sandbox: both), then ``list_files``, and
    ``upload_file`` / ``download_file`` when their directory is configured."""
    config = sessions.config
    tools: list[FunctionTool] = [
        ExecuteCodeTool(sessions) if kind is PoolKind.PYTHON else RunShellTool(sessions)
        for kind in sessions.tool_kinds
    ]
    tools.append(ListFilesTool(sessions))
    if config.upload_dir is not None:
        tools.append(UploadFileTool(sessions))
    if config.download_dir is not None:
        tools.append(DownloadFileTool(sessions))
    return tools


class CodeActProvider(AsyncClosing, ContextProvider, Generic[BackendT]):
    """Give an agent a code interpreter in Azure Container Apps dynamic sessions or sandboxes.

    Before every run it adds the tools (see :func:`session_tools`) and instructions that name the
    packages, the files and the injected functions. Each ``AgentSession`` gets its own dynamic
    session or sandbox, kept across runs. After every run the backend's ``after_run`` runs: a
    sandbox is suspended there (``SandboxesConfig.suspend_after_run``), memory kept.

    Either pass a backend (:class:`DynamicSessions` or :class:`Sandboxes`, shared with other
    agents or workflow steps, closed by its owner) or a configuration (:class:`DynamicSessionsConfig`
    or :class:`SandboxesConfig`, and credential, functions), in which case the provider owns the
    backend and closes it with ``async with`` / :meth:`close`.
    """

    DEFAULT_SOURCE_ID = "aca_sessions_codeact"

    after_run_once_per_turn: bool = True
    """Inside an ``AgentLoopMiddleware`` loop (the harness agents), ``after_run`` waits for the
    end of the user's turn: suspending the sandbox after each loop iteration would only make
    the next iteration resume it."""

    @overload
    def __init__(
        self: CodeActProvider[DynamicSessions],
        sessions: DynamicSessionsConfig,
        *,
        credential: TokenSource | None = None,
        functions: Sequence[InjectedFunction] = (),
        source_id: str = DEFAULT_SOURCE_ID,
        describe_files: bool = True,
        describe_packages: bool = True,
    ) -> None: ...

    @overload
    def __init__(
        self: CodeActProvider[Sandboxes],
        sessions: SandboxesConfig,
        *,
        credential: TokenSource | None = None,
        functions: Sequence[InjectedFunction] = (),
        source_id: str = DEFAULT_SOURCE_ID,
        describe_files: bool = True,
        describe_packages: bool = True,
    ) -> None: ...

    @overload
    def __init__(
        self,
        sessions: BackendT,
        *,
        credential: None = None,
        functions: Sequence[InjectedFunction] = (),
        source_id: str = DEFAULT_SOURCE_ID,
        describe_files: bool = True,
        describe_packages: bool = True,
    ) -> None: ...

    def __init__(
        self,
        sessions: CodeBackend | DynamicSessionsConfig | SandboxesConfig,
        *,
        credential: TokenSource | None = None,
        functions: Sequence[InjectedFunction] = (),
        source_id: str = DEFAULT_SOURCE_ID,
        describe_files: bool = True,
        describe_packages: bool = True,
    ) -> None:
        super().__init__(source_id)
        backend: CodeBackend
        if isinstance(sessions, DynamicSessionsConfig):
            backend = DynamicSessions(sessions, credential=credential, functions=functions)
            self._owns_sessions = True
        elif isinstance(sessions, SandboxesConfig):
            backend = Sandboxes(sessions, credential=credential, functions=functions)
            self._owns_sessions = True
        else:
            if credential is not None or functions:
                raise ValueError("credential and functions belong to the backend passed in")
            backend = sessions
            self._owns_sessions = False
        # The overloads tie the backend built here to BackendT.
        self._sessions = cast("BackendT", backend)
        self._tools = session_tools(self._sessions)
        self._describe_files = describe_files
        self._describe_packages = describe_packages

    @property
    def sessions(self) -> BackendT:
        """The backend the tools run in (a :class:`DynamicSessions` or a :class:`Sandboxes`)."""
        return self._sessions

    @property
    def tools(self) -> list[FunctionTool]:
        """The tools injected into each run."""
        return list(self._tools)

    async def instructions(self, session: AgentSession | None) -> str:
        """The instructions for a run in ``session``."""
        packages: list[str] = []
        files: list[SessionFile] | None = None
        if self._describe_packages:
            try:
                packages = await self._sessions.packages(session)
            except SessionsError as exc:
                logger.warning("could not list the session's packages: %s", exc)
        # Listing files of a conversation that has no session yet would allocate one for nothing.
        if self._describe_files and self._sessions.has_session(session):
            try:
                files = await self._sessions.list_files(session)
            except SessionsError as exc:
                logger.warning("could not list the session's files: %s", exc)
        module = self._sessions.functions
        return build_instructions(
            self._sessions.config,
            tool_names=[tool.name for tool in self._tools],
            packages=packages,
            files=files,
            function_stubs=module.stubs if module else (),
        )

    async def before_run(
        self,
        *,
        agent: Any,
        session: AgentSession | None,
        context: SessionContext,
        state: dict[str, Any],
    ) -> None:
        """Inject the tools and the instructions for this run."""
        context.extend_instructions(self.source_id, await self.instructions(session))
        context.extend_tools(self.source_id, self._tools)

    async def after_run(
        self,
        *,
        agent: Any,
        session: AgentSession | None,
        context: SessionContext,
        state: dict[str, Any],
    ) -> None:
        """Let the backend act on the end of the run: a sandbox is suspended (memory kept) until
        the conversation's next call; a dynamic session is left to its cooldown."""
        await self._sessions.after_run(session)

    async def close(self) -> None:
        """Close the sessions if this provider created them."""
        if self._owns_sessions:
            await self._sessions.close()


DynamicSessionsCodeActProvider = CodeActProvider
"""The name :class:`CodeActProvider` had when it ran on dynamic sessions only (kept for existing code)."""
