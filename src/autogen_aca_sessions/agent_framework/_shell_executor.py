"""Agent Framework's ``ShellExecutor`` protocol (``agent_framework_tools.shell``) on a dynamic session.

With it, Agent Framework's own shell tooling runs its commands in a session instead of on the
host: ``create_harness_agent(client, shell_executor=executor)``, the
``ShellEnvironmentProvider`` probing the shell, or ``client.get_shell_tool(func=executor.as_function())``.

On a Python pool a command runs through the interpreter's ``subprocess`` (``bash -c`` in
``/mnt/data``, in a process group of its own that is killed whole at the time limit), as the
AutoGen executor's ``sh`` blocks do; on a shell pool it runs natively through ``shellCommand``.
Either way each command starts a fresh shell: files in ``/mnt/data`` persist between commands,
``cd`` and exported variables do not (what ``LocalShellTool`` calls stateless mode).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agent_framework import AgentSession, Content, FunctionTool
from agent_framework_tools.shell import ShellExecutionError, ShellResult

from autogen_aca_sessions.agent_framework._config import ApprovalModeName, DynamicSessionsConfig, PoolKind
from autogen_aca_sessions.agent_framework._sessions import DynamicSessions
from autogen_aca_sessions.client import ExecutionResult, ExecutionTimeoutError, SessionsError, TokenSource
from autogen_aca_sessions.client.closing import AsyncClosing
from autogen_aca_sessions.client.limits import MAX_EXECUTION_SECONDS
from autogen_aca_sessions.client.session_shell import SHELL_TIMED_OUT_MARK, shell_code

__all__ = ["DynamicSessionsShellExecutor", "cut_bytes", "shell_function"]

_SHELL_KIND = "shell"
"""Agent Framework's tool kind for a shell (``agent_framework._tools.SHELL_TOOL_KIND_VALUE``):
chat clients' ``get_shell_tool`` recognise a local shell function by it."""
_WRAPPER_MARGIN_SECONDS = 2
"""On a Python pool the service's limit is this much above the command's, so that the wrapper
kills the command itself and its partial output still comes back."""

_COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"command": {"type": "string", "description": "The shell command to execute."}},
    "required": ["command"],
    "additionalProperties": False,
}


def _description(seconds: float | None) -> str:
    limit = f" Each command may run for {seconds:g} s." if seconds else ""
    return (
        "Execute a shell command in a sandboxed Linux session (Azure Container Apps dynamic "
        "session) and return its stdout, stderr and exit code. The working directory is /mnt/data; "
        "files there persist between calls, but every command starts a fresh shell, so `cd` and "
        f"exported variables do not. There is no network access.{limit}"
    )


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


class DynamicSessionsShellExecutor(AsyncClosing):
    """Runs Agent Framework's shell commands in one dynamic session (``ShellExecutor`` protocol).

    Like every ``ShellExecutor``, one instance serves one conversation: it maps to one dynamic
    session (that of ``session``, or of an ``AgentSession`` of its own). Pass the agent's
    ``AgentSession`` to share the session with the CodeAct tools of the same conversation.

    Args:
        sessions: A :class:`DynamicSessions` (shared; closed by its owner) or a configuration, in
            which case this executor owns the connection and closes it.
        credential: With a configuration: where tokens come from (see :class:`DynamicSessions`).
        session: The conversation whose dynamic session runs the commands; None: one of its own.
        timeout: Default time limit of one command in seconds (the configuration's
            ``timeout_seconds`` when None); at most 220 s, the service's cap.
        max_output_bytes: Most bytes kept of stdout and of stderr each (start and end kept).
        approval_mode: Of the tool :meth:`as_function` makes; the configuration's by default
            (the session is the sandbox, so no approval is the configuration's default).

    Errors of the pool (unreachable, refused, full) are raised as ``ShellExecutionError`` (the
    shell tooling's own error type, which its environment probe tolerates); a command that runs
    past its limit comes back as a result with ``timed_out`` and exit code 124, output so far kept.
    """

    def __init__(
        self,
        sessions: DynamicSessions | DynamicSessionsConfig,
        *,
        credential: TokenSource | None = None,
        session: AgentSession | None = None,
        timeout: float | None = None,
        max_output_bytes: int = 64 * 1024,
        approval_mode: ApprovalModeName | None = None,
    ) -> None:
        if isinstance(sessions, DynamicSessions):
            if credential is not None:
                raise ValueError("credential belongs to the DynamicSessions passed in")
            self._sessions = sessions
            self._owns_sessions = False
        else:
            self._sessions = DynamicSessions(sessions, credential=credential)
            self._owns_sessions = True
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if max_output_bytes < 1:
            raise ValueError(f"max_output_bytes must be at least 1, got {max_output_bytes!r}")
        self._owns_session = session is None
        self._session = session if session is not None else AgentSession()
        self._timeout = float(timeout if timeout is not None else self._sessions.config.timeout_seconds)
        self._max_output_bytes = max_output_bytes
        self._approval_mode: ApprovalModeName = approval_mode or self._sessions.config.approval_mode
        self._closed = False

    @property
    def sessions(self) -> DynamicSessions:
        """The pool connection the commands run through."""
        return self._sessions

    @property
    def session(self) -> AgentSession:
        """The conversation whose dynamic session runs the commands."""
        return self._session

    # ------------------------------------------------------------------ ShellExecutor protocol
    async def start(self) -> None:
        """Nothing to start: the session is created by the first command (as Azure does)."""
        if self._closed:
            raise ShellExecutionError("this DynamicSessionsShellExecutor is closed")

    async def close(self) -> None:
        """Release the session it made for itself (or close the connection it owns). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_sessions:
            await self._sessions.close()
        elif self._owns_session and self._sessions.has_session(self._session):
            try:
                await self._sessions.release(self._session)
            except SessionsError as exc:
                raise ShellExecutionError(f"releasing the session failed: {exc}") from exc

    async def run(self, command: str, *, timeout: float | None = None) -> ShellResult:
        """Run ``command`` in the session and return its output and exit status.

        ``timeout`` (seconds; the executor's default when None, at most 220) is enforced in the
        session: the command is killed there and its output so far comes back with ``timed_out``.
        """
        if self._closed:
            raise ShellExecutionError("this DynamicSessionsShellExecutor is closed")
        if not isinstance(command, str):
            raise ShellExecutionError(f"command must be a string, not {type(command).__name__}")
        seconds = self._timeout if timeout is None else timeout
        if not seconds > 0:
            raise ShellExecutionError(f"timeout must be positive, got {timeout!r}")
        seconds = min(seconds, float(MAX_EXECUTION_SECONDS - _WRAPPER_MARGIN_SECONDS))
        started = time.monotonic()
        try:
            if self._sessions.config.pool_kind is PoolKind.SHELL:
                outcome = await self._sessions.run_shell(
                    self._session, command, timeout_seconds=math.ceil(seconds)
                )
                result = outcome.result
                exit_code = (
                    result.exit_code if result.exit_code is not None else (0 if result.succeeded else 1)
                )
                timed_out = result.timed_out
            else:
                outcome = await self._sessions.run_code(
                    self._session,
                    shell_code(command, "bash", seconds),
                    timeout_seconds=math.ceil(seconds) + _WRAPPER_MARGIN_SECONDS,
                )
                result = outcome.result
                exit_code, timed_out = self._python_pool_status(result)
        except ExecutionTimeoutError as exc:
            return ShellResult(
                stdout="",
                stderr=f"No answer from the session in time: {exc}",
                exit_code=124,
                duration_ms=round((time.monotonic() - started) * 1000),
                timed_out=True,
            )
        except (SessionsError, ValueError) as exc:
            raise ShellExecutionError(f"the session could not run the command: {exc}") from exc
        stderr = result.stderr
        if outcome.notes:
            stderr = "\n".join([stderr.rstrip("\n"), *outcome.notes]).lstrip("\n")
        stdout, stdout_cut = cut_bytes(result.stdout, self._max_output_bytes)
        stderr, stderr_cut = cut_bytes(stderr, self._max_output_bytes)
        return ShellResult(
            stdout=stdout,
            stderr=stderr,
            exit_code=124 if timed_out else exit_code,
            duration_ms=round((time.monotonic() - started) * 1000),
            truncated=stdout_cut or stderr_cut or result.stdout_truncated or result.stderr_truncated,
            timed_out=timed_out,
        )

    @staticmethod
    def _python_pool_status(result: ExecutionResult) -> tuple[int, bool]:
        """Exit status and whether it timed out, of a command run by the interpreter's wrapper."""
        if result.timed_out:
            # The service stopped the wrapper itself (it did not get to report a status).
            return 124, True
        if result.succeeded and isinstance(result.result, int) and not isinstance(result.result, bool):
            return result.result, result.result == 124 and SHELL_TIMED_OUT_MARK in result.stderr
        # The wrapper itself failed (no bash, a dead interpreter): the traceback is in stderr.
        return 1, False

    async def __aenter__(self) -> DynamicSessionsShellExecutor:
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
            description=description or _description(self._timeout),
            approval_mode=self._approval_mode,
        )

    def __repr__(self) -> str:
        return f"DynamicSessionsShellExecutor({self._sessions!r})"
