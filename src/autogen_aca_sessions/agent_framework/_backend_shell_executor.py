"""What the two ``ShellExecutor`` implementations share, over the :class:`~._backend.CodeBackend` seam.

:class:`~._shell_executor.DynamicSessionsShellExecutor` and
:class:`~._sandbox_shell_executor.SandboxShellExecutor` keep the same contract (a result per
command with stdout, stderr, exit code; ``timed_out`` and exit code 124 past the limit, output so
far kept; output capped in bytes, start and end kept; the backend's failures as
``ShellExecutionError``). :class:`BackendShellExecutor` holds that contract once: the arguments,
who owns the connection and the conversation, the checks of a command, the capping of its output
and the tool it makes. A subclass says only how its backend runs one command, how it describes
its tool, and its wording.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from agent_framework import AgentSession, Content, FunctionTool
from agent_framework_tools.shell import ShellExecutionError, ShellResult

from autogen_aca_sessions.agent_framework._backend import BackendConfig, CodeBackend
from autogen_aca_sessions.agent_framework._config import ApprovalModeName
from autogen_aca_sessions.client import SessionsError, TokenSource
from autogen_aca_sessions.client.closing import AsyncClosing

__all__ = ["BackendShellExecutor", "CommandOutput", "ReleasingBackend", "cut_bytes", "shell_function"]

TIMED_OUT_EXIT_CODE = 124
"""The exit code of a command past its limit (``timeout(1)``'s, which the shell tooling expects)."""
_SHELL_KIND = "shell"
"""Agent Framework's tool kind for a shell (``agent_framework._tools.SHELL_TOOL_KIND_VALUE``):
chat clients' ``get_shell_tool`` recognise a local shell function by it."""

_COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"command": {"type": "string", "description": "The shell command to execute."}},
    "required": ["command"],
    "additionalProperties": False,
}


class ReleasingBackend(CodeBackend, Protocol):
    """A :class:`CodeBackend` that can also give up one conversation's workspace at once."""

    async def release(self, session: AgentSession) -> None:
        """Delete the conversation's workspace now; its next call starts a new one."""
        ...


_B = TypeVar("_B", bound=ReleasingBackend)
_Cfg = TypeVar("_Cfg", bound=BackendConfig)
_E = TypeVar("_E", bound="BackendShellExecutor[Any, Any]")


@dataclass(frozen=True)
class CommandOutput:
    """What a backend reports of one command, before the executor caps its output."""

    stdout: str
    """The command's standard output, whole as the backend returned it."""
    stderr: str
    """Its standard error, with any notes of the backend appended."""
    exit_code: int
    """Its exit status (ignored when ``timed_out``: the result then says 124)."""
    timed_out: bool = False
    """Whether the command was ended at its time limit."""
    truncated: bool = False
    """Whether the backend itself already cut the output."""


def cut_bytes(text: str, cap: int) -> tuple[str, bool]:
    """``text`` within ``cap`` UTF-8 bytes, its start and end kept; and whether it was cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= cap:
        return text, False
    head, tail = cap // 2, cap - cap // 2
    left_out = len(data) - cap
    start = data[:head].decode("utf-8", "replace")
    end = data[len(data) - tail :].decode("utf-8", "replace")
    return f"{start}\n[... {left_out} bytes cut ...]\n{end}", True


def shell_function(
    run: Callable[[str], Awaitable[ShellResult]],
    *,
    name: str,
    description: str,
    approval_mode: ApprovalModeName,
) -> FunctionTool:
    """A shell tool (``kind="shell"``) that calls ``run`` (an executor's ``run``): its result is the
    text the shell tooling gives a model (stdout, stderr, exit code), the structured fields beside it."""

    async def run_shell(command: str) -> list[Content]:
        try:
            result = await run(command)
        except ShellExecutionError as exc:
            return [Content.from_text(f"error: {exc}")]
        return [
            Content.from_text(
                result.format_for_model(),
                additional_properties={
                    "stdout": result.stdout,
                    "stderr": result.stderr,
                    "exit_code": result.exit_code,
                    "truncated": result.truncated,
                    "timed_out": result.timed_out,
                },
            )
        ]

    return FunctionTool(
        name=name,
        description=description,
        approval_mode=approval_mode,
        kind=_SHELL_KIND,
        func=run_shell,
        input_model=_COMMAND_SCHEMA,
    )


class BackendShellExecutor(AsyncClosing, ABC, Generic[_B, _Cfg]):
    """Agent Framework's ``ShellExecutor`` protocol on one conversation of a :class:`CodeBackend`.

    Args:
        backend: The backend (shared; closed by its owner) or its configuration, in which case this
            executor opens the backend, owns it and closes it.
        credential: With a configuration: where tokens come from.
        session: The conversation whose workspace runs the commands; None: one of its own.
        timeout: Default time limit of one command in seconds (the configuration's
            ``timeout_seconds`` when None).
        max_output_bytes: Most bytes kept of stdout and of stderr each (start and end kept).
        approval_mode: Of the tool :meth:`as_function` makes; the configuration's by default.
    """

    _backend_name: ClassVar[str]
    """The backend class's name, as the errors about it say it."""
    _release_failed: ClassVar[str]
    """The start of the error raised when :meth:`close` could not delete its own workspace."""
    _backend_close_releases: ClassVar[bool]
    """Whether closing a backend this executor owns already deletes the workspace it used (then
    :meth:`close` does not delete it first)."""

    def __init__(
        self,
        backend: _B | _Cfg,
        *,
        credential: TokenSource | None,
        session: AgentSession | None,
        timeout: float | None,
        max_output_bytes: int,
        approval_mode: ApprovalModeName | None,
    ) -> None:
        # A backend is told from a configuration by the configuration types: those are closed
        # (two dataclasses), where the backends are any class of the protocol.
        if isinstance(backend, BackendConfig):
            self._backend: _B = self._open(backend, credential)
            self._owns_backend = True
        else:
            if credential is not None:
                raise ValueError(f"credential belongs to the {self._backend_name} passed in")
            self._backend = backend
            self._owns_backend = False
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if max_output_bytes < 1:
            raise ValueError(f"max_output_bytes must be at least 1, got {max_output_bytes!r}")
        self._owns_session = session is None
        self._session = session if session is not None else AgentSession()
        self._timeout = float(timeout if timeout is not None else self._backend.config.timeout_seconds)
        self._max_output_bytes = max_output_bytes
        self._approval_mode: ApprovalModeName = approval_mode or self._backend.config.approval_mode
        self._closed = False

    # ------------------------------------------------------------------ per backend
    @staticmethod
    @abstractmethod
    def _open(config: _Cfg, credential: TokenSource | None) -> _B:
        """The backend of ``config``, opened by (and owned by) this executor."""

    @abstractmethod
    async def _execute(self, command: str, seconds: float) -> CommandOutput:
        """Run ``command`` within ``seconds`` in the conversation's workspace; the backend's
        failures raised as ``ShellExecutionError``."""

    @abstractmethod
    def _describe(self, seconds: float) -> str:
        """The description of the tool :meth:`as_function` makes, for commands of ``seconds``."""

    # ------------------------------------------------------------------ shared
    @property
    def session(self) -> AgentSession:
        """The conversation whose workspace runs the commands."""
        return self._session

    def _check_open(self) -> None:
        if self._closed:
            raise ShellExecutionError(f"this {type(self).__name__} is closed")

    async def start(self) -> None:
        """Nothing to start: the workspace is made (or resumed) by the first command."""
        self._check_open()

    async def close(self) -> None:
        """Delete the workspace of its own ``AgentSession`` (one passed in is left to its owner),
        then close the backend it owns. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            closing_releases = self._owns_backend and self._backend_close_releases
            if self._owns_session and not closing_releases and self._backend.has_session(self._session):
                try:
                    await self._backend.release(self._session)
                except SessionsError as exc:
                    raise ShellExecutionError(f"{self._release_failed}: {exc}") from exc
        finally:
            if self._owns_backend:
                await self._backend.close()

    async def run(self, command: str, *, timeout: float | None = None) -> ShellResult:
        """Run ``command`` in the workspace and return its output and exit status.

        ``timeout`` (seconds; the executor's default when None) is enforced where the command
        runs: it is ended there and its output so far comes back with ``timed_out``.
        """
        self._check_open()
        if not isinstance(command, str):
            raise ShellExecutionError(f"command must be a string, not {type(command).__name__}")
        seconds = self._timeout if timeout is None else timeout
        if not seconds > 0:
            raise ShellExecutionError(f"timeout must be positive, got {timeout!r}")
        started = time.monotonic()
        out = await self._execute(command, seconds)
        stdout, stdout_cut = cut_bytes(out.stdout, self._max_output_bytes)
        stderr, stderr_cut = cut_bytes(out.stderr, self._max_output_bytes)
        return ShellResult(
            stdout=stdout,
            stderr=stderr,
            exit_code=TIMED_OUT_EXIT_CODE if out.timed_out else out.exit_code,
            duration_ms=round((time.monotonic() - started) * 1000),
            truncated=stdout_cut or stderr_cut or out.truncated,
            timed_out=out.timed_out,
        )

    async def __aenter__(self: _E) -> _E:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ Agent Framework wiring
    def as_function(self, *, name: str = "run_shell", description: str | None = None) -> FunctionTool:
        """A shell tool (``kind="shell"``) bound to this executor, as ``LocalShellTool.as_function``
        makes one: what ``create_harness_agent(shell_executor=...)`` and a chat client's
        ``get_shell_tool(func=...)`` take. Its result is the text the shell tooling gives a model
        (stdout, stderr, exit code) with the structured fields beside it."""
        return shell_function(
            self.run,
            name=name,
            description=description or self._describe(self._timeout),
            approval_mode=self._approval_mode,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend!r})"
