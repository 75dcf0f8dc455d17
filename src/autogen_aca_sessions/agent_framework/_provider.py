"""The CodeAct context provider: injects the session tools and instructions into every run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from agent_framework import AgentSession, ContextProvider, FunctionTool, SessionContext

from autogen_aca_sessions.agent_framework._config import DynamicSessionsConfig, PoolKind
from autogen_aca_sessions.agent_framework._functions import InjectedFunction
from autogen_aca_sessions.agent_framework._instructions import build_instructions
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

__all__ = ["DynamicSessionsCodeActProvider", "session_tools"]

logger = logging.getLogger(__name__)


def session_tools(sessions: DynamicSessions) -> list[FunctionTool]:
    """The tools for ``sessions``' pool: ``execute_code`` (Python) or ``run_shell`` (shell), then
    ``list_files``, and ``upload_file`` / ``download_file`` when their directory is configured."""
    config = sessions.config
    tools: list[FunctionTool] = [
        ExecuteCodeTool(sessions) if config.pool_kind is PoolKind.PYTHON else RunShellTool(sessions),
        ListFilesTool(sessions),
    ]
    if config.upload_dir is not None:
        tools.append(UploadFileTool(sessions))
    if config.download_dir is not None:
        tools.append(DownloadFileTool(sessions))
    return tools


class DynamicSessionsCodeActProvider(AsyncClosing, ContextProvider):
    """Give an agent a code interpreter in Azure Container Apps dynamic sessions.

    Before every run it adds the session tools (see :func:`session_tools`) and instructions that
    name the session's packages, its files and the injected functions. Each ``AgentSession`` gets
    its own dynamic session, kept across runs.

    Either pass a :class:`DynamicSessions` (shared with other agents or workflow steps, closed by
    its owner) or a configuration (and credential, functions), in which case the provider owns the
    sessions and closes them with ``async with`` / :meth:`close`.
    """

    DEFAULT_SOURCE_ID = "aca_sessions_codeact"

    def __init__(
        self,
        sessions: DynamicSessions | DynamicSessionsConfig,
        *,
        credential: TokenSource | None = None,
        functions: Sequence[InjectedFunction] = (),
        source_id: str = DEFAULT_SOURCE_ID,
        describe_files: bool = True,
        describe_packages: bool = True,
    ) -> None:
        super().__init__(source_id)
        if isinstance(sessions, DynamicSessions):
            if credential is not None or functions:
                raise ValueError("credential and functions belong to the DynamicSessions passed in")
            self._sessions = sessions
            self._owns_sessions = False
        else:
            self._sessions = DynamicSessions(sessions, credential=credential, functions=functions)
            self._owns_sessions = True
        self._tools = session_tools(self._sessions)
        self._describe_files = describe_files
        self._describe_packages = describe_packages

    @property
    def sessions(self) -> DynamicSessions:
        """The sessions the tools run in."""
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

    async def close(self) -> None:
        """Close the sessions if this provider created them."""
        if self._owns_sessions:
            await self._sessions.close()
