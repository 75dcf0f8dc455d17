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

from agent_framework import AgentSession
from agent_framework_tools.shell import ShellExecutionError

from autogen_aca_sessions.agent_framework._backend_shell_executor import BackendShellExecutor, CommandOutput
from autogen_aca_sessions.agent_framework._config import ApprovalModeName, SandboxesConfig
from autogen_aca_sessions.agent_framework._sandboxes import Sandboxes, gone_message
from autogen_aca_sessions.client import SessionsError, TokenSource
from autogen_aca_sessions.client.sandbox_python import WORK_DIR, SandboxGoneError

__all__ = ["SandboxShellExecutor"]


def _description(seconds: float) -> str:
    return (
        "Execute a shell command in a Linux sandbox (Azure Container Apps sandbox) and return its "
        f"stdout, stderr and exit code. The working directory is {WORK_DIR}; files there persist "
        "between calls, but every command starts a fresh shell, so `cd` and exported variables do "
        f"not. Each command may run for {seconds:g} s."
    )


class SandboxShellExecutor(BackendShellExecutor[Sandboxes, SandboxesConfig]):
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

    _backend_name = "Sandboxes"
    _release_failed = "deleting the sandbox failed"
    # Closing a Sandboxes does what its configuration says with the sandboxes it holds; the
    # sandbox of this executor's own AgentSession is deleted first either way.
    _backend_close_releases = False

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
        super().__init__(
            sandboxes,
            credential=credential,
            session=session,
            timeout=timeout,
            max_output_bytes=max_output_bytes,
            approval_mode=approval_mode,
        )

    @property
    def sandboxes(self) -> Sandboxes:
        """The sandbox group connection the commands run through."""
        return self._backend

    @staticmethod
    def _open(config: SandboxesConfig, credential: TokenSource | None) -> Sandboxes:
        return Sandboxes(config, credential=credential)

    def _describe(self, seconds: float) -> str:
        return _description(seconds)

    async def _execute(self, command: str, seconds: float) -> CommandOutput:
        """With bash, by the sandbox's ``executeShellCommand``, which ends it at ``seconds``."""
        try:
            async with self._backend.running(self._session) as runner:
                ran = await runner.run_shell(command, program="bash", timeout=seconds)
        except SandboxGoneError as exc:
            raise ShellExecutionError(gone_message(exc.sandbox_id)) from exc
        except (SessionsError, ValueError) as exc:
            raise ShellExecutionError(f"the sandbox could not run the command: {exc}") from exc
        return CommandOutput(
            stdout=ran.stdout,
            stderr=ran.stderr,
            exit_code=ran.exit_code,
            timed_out=ran.timed_out,
            truncated=ran.truncated,
        )
