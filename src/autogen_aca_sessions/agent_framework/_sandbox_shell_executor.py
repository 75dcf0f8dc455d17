"""Agent Framework's ``ShellExecutor`` protocol (``agent_framework_tools.shell``) on an ACA sandbox.

The sandbox twin of :class:`~._shell_executor.DynamicSessionsShellExecutor`: same contract (a
result per command with stdout, stderr, exit code; ``timed_out`` and exit code 124 past the
limit, output so far kept; output capped in bytes, start and end kept; the backend's failures as
``ShellExecutionError``), so Agent Framework's own shell tooling
(``create_harness_agent(shell_executor=...)``, ``ShellEnvironmentProvider``,
``client.get_shell_tool(func=executor.as_function())``) can run on either.

Each command is a fresh ``bash`` in the sandbox's working directory (``/root/work``), run by the
sandbox's own ``executeShellCommand``, which ends it at its time limit: files persist between
commands, ``cd`` and exported variables do not (``LocalShellTool``'s stateless mode). A suspended
sandbox is resumed by the command.
"""

from __future__ import annotations

import time

from agent_framework import AgentSession, FunctionTool
from agent_framework_tools.shell import ShellExecutionError, ShellResult

from autogen_aca_sessions.agent_framework._config import ApprovalModeName, SandboxesConfig
from autogen_aca_sessions.agent_framework._sandboxes import Sandboxes, gone_message
from autogen_aca_sessions.agent_framework._shell_executor import cut_bytes, shell_function
from autogen_aca_sessions.client import SessionsError, TokenSource
from autogen_aca_sessions.client.closing import AsyncClosing
from autogen_aca_sessions.client.sandbox_python import TIMEOUT_EXIT_CODE, WORK_DIR, SandboxGoneError

__all__ = ["SandboxShellExecutor"]


def _description(seconds: float) -> str:
    return (
        "Execute a shell command in a Linux sandbox (Azure Container Apps sandbox) and return its "
        f"stdout, stderr and exit code. The working directory is {WORK_DIR}; files there persist "
        "between calls, but every command starts a fresh shell, so `cd` and exported variables do "
        f"not. Each command may run for {seconds:g} s."
    )


class SandboxShellExecutor(AsyncClosing):
    """Runs Agent Framework's shell commands in one ACA sandbox (``ShellExecutor`` protocol).

    One instance serves one conversation: the sandbox of ``session`` (created by the first
    command, its id kept in that ``AgentSession``'s state), or of an ``AgentSession`` of its own.
    Pass the agent's ``AgentSession`` to share the sandbox with the CodeAct tools.

    Args:
        sandboxes: A :class:`Sandboxes` (shared; closed by its owner) or a configuration, in which
            case this executor owns the connection and closes it.
        credential: With a configuration: where tokens come from (see :class:`Sandboxes`).
        session: The conversation whose sandbox runs the commands; None: one of its own, deleted
            on :meth:`close`.
        timeout: Default time limit of one command in seconds (the configuration's
            ``timeout_seconds`` when None).
        max_output_bytes: Most bytes kept of stdout and of stderr each (start and end kept).
        approval_mode: Of the tool :meth:`as_function` makes; the configuration's by default.

    Failures of the service (unreachable, refused, the sandbox deleted) are raised as
    ``ShellExecutionError``; a command past its limit is a result with ``timed_out`` and exit code 124.
    """

    def __init__(
        self,
        sandboxes: Sandboxes | SandboxesConfig,
        *,
        credential: TokenSource | None = None,
        session: AgentSession | None = None,
        timeout: float | None = None,
        max_output_bytes: int = 64 * 1024,
        approval_mode: ApprovalModeName | None = None,
    ) -> None:
        if isinstance(sandboxes, Sandboxes):
            if credential is not None:
                raise ValueError("credential belongs to the Sandboxes passed in")
            self._sandboxes = sandboxes
            self._owns_sandboxes = False
        else:
            self._sandboxes = Sandboxes(sandboxes, credential=credential)
            self._owns_sandboxes = True
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if max_output_bytes < 1:
            raise ValueError(f"max_output_bytes must be at least 1, got {max_output_bytes!r}")
        self._owns_session = session is None
        self._session = session if session is not None else AgentSession()
        self._timeout = float(timeout if timeout is not None else self._sandboxes.config.timeout_seconds)
        self._max_output_bytes = max_output_bytes
        self._approval_mode: ApprovalModeName = approval_mode or self._sandboxes.config.approval_mode
        self._closed = False

    @property
    def sandboxes(self) -> Sandboxes:
        """The sandbox group connection the commands run through."""
        return self._sandboxes

    @property
    def session(self) -> AgentSession:
        """The conversation whose sandbox runs the commands."""
        return self._session

    # ------------------------------------------------------------------ ShellExecutor protocol
    async def start(self) -> None:
        """Nothing to start: the sandbox is created (or resumed) by the first command."""
        if self._closed:
            raise ShellExecutionError("this SandboxShellExecutor is closed")

    async def close(self) -> None:
        """Delete the sandbox of its own ``AgentSession`` (one passed in is left to its owner),
        then close the connection it owns. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_session and self._sandboxes.has_session(self._session):
                try:
                    await self._sandboxes.release(self._session)
                except SessionsError as exc:
                    raise ShellExecutionError(f"deleting the sandbox failed: {exc}") from exc
        finally:
            if self._owns_sandboxes:
                await self._sandboxes.close()

    async def run(self, command: str, *, timeout: float | None = None) -> ShellResult:
        """Run ``command`` with bash in the sandbox and return its output and exit status.

        ``timeout`` (seconds; the executor's default when None) is enforced by the sandbox: the
        command is ended there and its output so far comes back with ``timed_out``.
        """
        if self._closed:
            raise ShellExecutionError("this SandboxShellExecutor is closed")
        if not isinstance(command, str):
            raise ShellExecutionError(f"command must be a string, not {type(command).__name__}")
        seconds = self._timeout if timeout is None else timeout
        if not seconds > 0:
            raise ShellExecutionError(f"timeout must be positive, got {timeout!r}")
        started = time.monotonic()
        try:
            async with self._sandboxes.running(self._session) as runner:
                ran = await runner.run_shell(command, program="bash", timeout=seconds)
        except SandboxGoneError as exc:
            raise ShellExecutionError(gone_message(exc.sandbox_id)) from exc
        except (SessionsError, ValueError) as exc:
            raise ShellExecutionError(f"the sandbox could not run the command: {exc}") from exc
        stdout, stdout_cut = cut_bytes(ran.stdout, self._max_output_bytes)
        stderr, stderr_cut = cut_bytes(ran.stderr, self._max_output_bytes)
        return ShellResult(
            stdout=stdout,
            stderr=stderr,
            exit_code=TIMEOUT_EXIT_CODE if ran.timed_out else ran.exit_code,
            duration_ms=round((time.monotonic() - started) * 1000),
            truncated=stdout_cut or stderr_cut or ran.truncated,
            timed_out=ran.timed_out,
        )

    async def __aenter__(self) -> SandboxShellExecutor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ Agent Framework wiring
    def as_function(self, *, name: str = "run_shell", description: str | None = None) -> FunctionTool:
        """A shell tool (``kind="shell"``) bound to this executor, as ``LocalShellTool.as_function``
        makes one: what ``create_harness_agent(shell_executor=...)`` and a chat client's
        ``get_shell_tool(func=...)`` take."""
        return shell_function(
            self.run,
            name=name,
            description=description or _description(self._timeout),
            approval_mode=self._approval_mode,
        )

    def __repr__(self) -> str:
        return f"SandboxShellExecutor({self._sandboxes!r})"
