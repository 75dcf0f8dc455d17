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

from agent_framework import AgentSession
from agent_framework_tools.shell import ShellExecutionError

from autogen_aca_sessions.agent_framework._backend_shell_executor import (
    TIMED_OUT_EXIT_CODE,
    BackendShellExecutor,
    CommandOutput,
    cut_bytes,
    shell_function,
)
from autogen_aca_sessions.agent_framework._config import ApprovalModeName, DynamicSessionsConfig, PoolKind
from autogen_aca_sessions.agent_framework._sessions import DynamicSessions
from autogen_aca_sessions.client import ExecutionResult, ExecutionTimeoutError, SessionsError, TokenSource
from autogen_aca_sessions.client.limits import MAX_EXECUTION_SECONDS
from autogen_aca_sessions.client.session_shell import SHELL_TIMED_OUT_MARK, shell_code

# cut_bytes and shell_function live in _backend_shell_executor now; still importable from here.
__all__ = ["DynamicSessionsShellExecutor", "cut_bytes", "shell_function"]

_WRAPPER_MARGIN_SECONDS = 2
"""On a Python pool the service's limit is this much above the command's, so that the wrapper
kills the command itself and its partial output still comes back."""


def _description(seconds: float | None) -> str:
    limit = f" Each command may run for {seconds:g} s." if seconds else ""
    return (
        "Execute a shell command in a sandboxed Linux session (Azure Container Apps dynamic "
        "session) and return its stdout, stderr and exit code. The working directory is /mnt/data; "
        "files there persist between calls, but every command starts a fresh shell, so `cd` and "
        f"exported variables do not. There is no network access.{limit}"
    )


class DynamicSessionsShellExecutor(BackendShellExecutor[DynamicSessions, DynamicSessionsConfig]):
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

    _backend_name = "DynamicSessions"
    _release_failed = "releasing the session failed"
    # The DynamicSessions this executor owns deletes the sessions it used when it closes
    # (``release_on_close``), so its own session is not deleted first.
    _backend_close_releases = True

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
        super().__init__(
            sessions,
            credential=credential,
            session=session,
            timeout=timeout,
            max_output_bytes=max_output_bytes,
            approval_mode=approval_mode,
        )

    @property
    def sessions(self) -> DynamicSessions:
        """The pool connection the commands run through."""
        return self._backend

    @staticmethod
    def _open(config: DynamicSessionsConfig, credential: TokenSource | None) -> DynamicSessions:
        return DynamicSessions(config, credential=credential)

    def _describe(self, seconds: float) -> str:
        return _description(seconds)

    async def _execute(self, command: str, seconds: float) -> CommandOutput:
        """On a shell pool through ``shellCommand``; on a Python pool through the interpreter's
        wrapper, whose limit (at most 220 s, the service's cap, less the margin) ends the command in
        the session with its output so far."""
        seconds = min(seconds, float(MAX_EXECUTION_SECONDS - _WRAPPER_MARGIN_SECONDS))
        try:
            if self._backend.config.pool_kind is PoolKind.SHELL:
                outcome = await self._backend.run_shell(
                    self._session, command, timeout_seconds=math.ceil(seconds)
                )
                result = outcome.result
                exit_code = (
                    result.exit_code if result.exit_code is not None else (0 if result.succeeded else 1)
                )
                timed_out = result.timed_out
            else:
                outcome = await self._backend.run_code(
                    self._session,
                    shell_code(command, "bash", seconds),
                    timeout_seconds=math.ceil(seconds) + _WRAPPER_MARGIN_SECONDS,
                )
                result = outcome.result
                exit_code, timed_out = self._python_pool_status(result)
        except ExecutionTimeoutError as exc:
            return CommandOutput(
                stdout="",
                stderr=f"No answer from the session in time: {exc}",
                exit_code=TIMED_OUT_EXIT_CODE,
                timed_out=True,
            )
        except (SessionsError, ValueError) as exc:
            raise ShellExecutionError(f"the session could not run the command: {exc}") from exc
        stderr = result.stderr
        if outcome.notes:
            stderr = "\n".join([stderr.rstrip("\n"), *outcome.notes]).lstrip("\n")
        return CommandOutput(
            stdout=result.stdout,
            stderr=stderr,
            exit_code=exit_code,
            timed_out=timed_out,
            truncated=result.stdout_truncated or result.stderr_truncated,
        )

    @staticmethod
    def _python_pool_status(result: ExecutionResult) -> tuple[int, bool]:
        """Exit status and whether it timed out, of a command run by the interpreter's wrapper."""
        if result.timed_out:
            # The service stopped the wrapper itself (it did not get to report a status).
            return TIMED_OUT_EXIT_CODE, True
        if result.succeeded and isinstance(result.result, int) and not isinstance(result.result, bool):
            return (
                result.result,
                result.result == TIMED_OUT_EXIT_CODE and SHELL_TIMED_OUT_MARK in result.stderr,
            )
        # The wrapper itself failed (no bash, a dead interpreter): the traceback is in stderr.
        return 1, False
