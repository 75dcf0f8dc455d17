"""The seam between the Agent Framework tools and the service that runs their code.

The tools, the CodeAct provider and the shell executors talk to a :class:`CodeBackend`, never to a
client directly. Two classes implement it: :class:`~._sessions.DynamicSessions` (one dynamic
session per ``AgentSession``) and :class:`~._sandboxes.Sandboxes` (one ACA sandbox per
``AgentSession``, suspended between runs). What differs between them (where files live, whether
figures come back as images, what happens between runs) stays inside them and in the texts of
``_instructions``, which branch on :class:`~._config.BackendKind` in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from autogen_aca_sessions.agent_framework._config import DynamicSessionsConfig, PoolKind, SandboxesConfig
from autogen_aca_sessions.agent_framework._functions import FunctionsModule
from autogen_aca_sessions.client import ExecutionResult, SessionFile

if TYPE_CHECKING:
    from agent_framework import AgentSession

__all__ = ["BackendConfig", "CodeBackend", "RunOutcome"]

BackendConfig = DynamicSessionsConfig | SandboxesConfig
"""The configuration of either backend."""


@dataclass
class RunOutcome:
    """One execution as the tools report it."""

    result: ExecutionResult
    """What the service returned (a sandbox's command result is mapped onto the same model)."""
    identifier: str
    """Where the code ran: the session identifier, or the sandbox id."""
    notes: list[str] = field(default_factory=list)
    """Things the model should know beyond the output (e.g. the session was replaced)."""


@runtime_checkable
class CodeBackend(Protocol):
    """Where one agent's conversations run code: one workspace per ``AgentSession``.

    Every method taking an ``AgentSession`` finds (or makes, on first use) that conversation's
    workspace; ``None`` means one workspace shared by calls made outside any conversation.
    Failures are :class:`~autogen_aca_sessions.client.SessionsError` subclasses (or
    ``ValueError``/``OSError`` for a refused path), which the tools turn into results for the model.
    """

    @property
    def config(self) -> BackendConfig:
        """The serialisable configuration (limits, approval, directories, where code runs)."""
        ...

    @property
    def functions(self) -> FunctionsModule | None:
        """The module built from the injected functions, if any."""
        ...

    @property
    def tool_kinds(self) -> tuple[PoolKind, ...]:
        """What code the workspace runs, in the order the run tools are offered: Python
        (``execute_code``), shell commands (``run_shell``), or both."""
        ...

    async def run_code(
        self, session: AgentSession | None, code: str, *, timeout_seconds: int | None = None
    ) -> RunOutcome:
        """Run Python in the conversation's interpreter (its variables persist between calls)."""
        ...

    async def run_shell(
        self, session: AgentSession | None, command: str, *, timeout_seconds: int | None = None
    ) -> RunOutcome:
        """Run a shell command in the conversation's workspace."""
        ...

    async def upload(self, session: AgentSession | None, name: str, data: bytes) -> SessionFile:
        """Put ``data`` into the workspace's working directory as ``name`` (``dir/name`` allowed)."""
        ...

    async def download(self, session: AgentSession | None, name: str) -> bytes:
        """The content of ``name`` (relative to the working directory)."""
        ...

    async def list_files(self, session: AgentSession | None) -> list[SessionFile]:
        """The files under the working directory."""
        ...

    async def upload_from_allowed_dir(self, session: AgentSession | None, local_path: str) -> SessionFile:
        """Upload a file of the configured ``upload_dir`` (``local_path`` is relative to it)."""
        ...

    async def download_to_allowed_dir(
        self, session: AgentSession | None, name: str, local_name: str | None = None
    ) -> Path:
        """Download ``name`` into the configured ``download_dir``."""
        ...

    async def packages(self, session: AgentSession | None = None) -> list[str]:
        """Names of the packages installed where the code runs."""
        ...

    def has_session(self, session: AgentSession | None) -> bool:
        """Whether the conversation has a workspace already (asking must not create one)."""
        ...

    async def after_run(self, session: AgentSession | None) -> None:
        """Called when an agent run in ``session`` ended (the CodeAct provider's after-run hook):
        a chance to stop paying for an idle workspace."""
        ...

    async def close(self) -> None:
        """Release what this object holds (connections; workspaces as its configuration says)."""
        ...
