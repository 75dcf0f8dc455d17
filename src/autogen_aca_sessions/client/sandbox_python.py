"""One sandbox as a place to run code: its persistent Python interpreter and its shell.

Framework-neutral: the AutoGen executor and the Agent Framework tools both run blocks through
:class:`SandboxPython`, so they share one interpreter protocol (``_sandbox_repl``), one rule for
a sandbox that suspended itself, and one error for a sandbox that is gone.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from autogen_aca_sessions.client._sandbox_repl import CLIENT, REPL_DIR, SERVER, TIMEOUT_EXIT_CODE
from autogen_aca_sessions.client.errors import NotFoundError, SessionsError, SessionsHTTPError
from autogen_aca_sessions.client.sandbox_stream import OutputCallback
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState, ShellResult

__all__ = ["TIMEOUT_EXIT_CODE", "WORK_DIR", "SandboxGoneError", "SandboxPython"]

WORK_DIR = "/root/work"
"""Where blocks run and where uploaded files go in the sandbox."""

_T = TypeVar("_T")


class SandboxGoneError(SessionsError):
    """The sandbox does not exist (a wrong id in a saved state, or it was deleted)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"Sandbox '{sandbox_id}' does not exist in this sandbox group (a wrong id, or it was "
            "deleted); its memory and files are gone. Restart to continue in a new sandbox."
        )
        self.sandbox_id = sandbox_id


class SandboxPython:
    """Runs Python blocks (in one interpreter that keeps its variables) and shell scripts in one
    sandbox, resuming it when it suspended itself.

    Not safe for concurrent blocks: callers serialise them (one block at a time per sandbox).
    """

    def __init__(self, client: SandboxesClient, sandbox_id: str, *, work_dir: str = WORK_DIR) -> None:
        self._client = client
        self._sandbox_id = sandbox_id
        self._work_dir = work_dir
        self._interpreter_started = False

    @property
    def sandbox_id(self) -> str:
        """The sandbox this runs in."""
        return self._sandbox_id

    @property
    def client(self) -> SandboxesClient:
        """The sandbox group's client."""
        return self._client

    @classmethod
    async def create(
        cls, client: SandboxesClient, image: str, *, idle_suspend_seconds: float | None = None
    ) -> SandboxPython:
        """A new sandbox from ``image``, with its working directory made."""
        info = await client.create(image, idle_suspend_seconds=idle_suspend_seconds)
        await client.exec_shell(info.id, f"mkdir -p {WORK_DIR} {REPL_DIR}")
        return cls(client, info.id)

    def forget_interpreter(self) -> None:
        """Look for the interpreter again before the next block (after a disk-mode resume, say)."""
        self._interpreter_started = False

    async def call(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """Send one request for the sandbox; a wrong or deleted id is :class:`SandboxGoneError`.

        A sandbox that suspended itself (lifecycle policy) between our look at its state and this
        request refuses it with ``SandboxNotRunning`` before running anything, so resuming it and
        sending the request once more cannot run anything twice.
        """
        try:
            try:
                return await make()
            except SessionsHTTPError as exc:
                if exc.error_code != "SandboxNotRunning":
                    raise
                await self._client.resume(self._sandbox_id)
                return await make()
        except NotFoundError as exc:
            raise SandboxGoneError(self._sandbox_id) from exc

    async def ensure_running(self) -> None:
        """Resume the sandbox unless it runs."""
        sandbox_id = self._sandbox_id
        info = await self.call(lambda: self._client.get(sandbox_id))
        if info.state is not SandboxState.RUNNING:
            await self.call(lambda: self._client.resume(sandbox_id))

    async def stop(self) -> None:
        """Suspend the sandbox (what it keeps follows its lifecycle's suspend mode)."""
        sandbox_id = self._sandbox_id
        await self.call(lambda: self._client.stop(sandbox_id))

    async def delete(self) -> None:
        """Delete the sandbox (nothing happens when it is already gone)."""
        with contextlib.suppress(NotFoundError):
            await self._client.delete(self._sandbox_id)
        self._interpreter_started = False

    async def _ensure_interpreter(self) -> None:
        if self._interpreter_started:
            return
        sandbox_id, client = self._sandbox_id, self._client
        alive = await self.call(
            lambda: client.exec_shell(
                sandbox_id, f"kill -0 $(cat {REPL_DIR}/repl.pid 2>/dev/null) 2>/dev/null"
            )
        )
        if alive.exit_code != 0:
            await self.call(lambda: client.write_file(sandbox_id, f"{REPL_DIR}/server.py", SERVER.encode()))
            await self.call(lambda: client.write_file(sandbox_id, f"{REPL_DIR}/client.py", CLIENT.encode()))
            # The server is up when its pid file is written (after it listens).
            start = (
                f"rm -f {REPL_DIR}/repl.pid; mkdir -p {self._work_dir} && cd {self._work_dir} && "
                f"nohup python3 {REPL_DIR}/server.py {REPL_DIR} >{REPL_DIR}/server.log 2>&1 & "
                f"for i in $(seq 100); do [ -s {REPL_DIR}/repl.pid ] && exit 0; sleep 0.05; done; "
                f"cat {REPL_DIR}/server.log; exit 1"
            )
            started = await self.call(lambda: client.exec_shell(sandbox_id, start))
            if started.exit_code != 0:
                raise SessionsError(
                    f"The sandbox's Python interpreter did not start: {started.stdout[-500:]}"
                )
        self._interpreter_started = True

    async def _command(self, command: str, timeout: float, on_output: OutputCallback | None) -> ShellResult:
        """Run ``command`` in the working directory: streamed to ``on_output`` when given."""
        sandbox_id, client, work_dir = self._sandbox_id, self._client, self._work_dir
        if on_output is None:
            return await self.call(
                lambda: client.exec_shell(sandbox_id, command, working_directory=work_dir, timeout=timeout)
            )
        # call() resumes and sends again only on SandboxNotRunning, which the stream raises only
        # when nothing ran (before the upgrade, or before the command started).
        return await self.call(
            lambda: client.exec_stream(
                sandbox_id, command, on_output=on_output, working_directory=work_dir, timeout=timeout
            )
        )

    async def run_python(
        self, code: str, *, timeout: float, on_output: OutputCallback | None = None
    ) -> ShellResult:
        """Run ``code`` in the sandbox's interpreter; at ``timeout`` it is interrupted (exit code
        :data:`TIMEOUT_EXIT_CODE`, output so far kept, variables kept).

        With ``on_output``, the block's output reaches it while the block runs
        (:meth:`SandboxesClient.exec_stream`; once at the end where the server does not stream)."""
        await self._ensure_interpreter()
        sandbox_id, client = self._sandbox_id, self._client
        block = f"{REPL_DIR}/block_{uuid.uuid4().hex}.py"
        await self.call(lambda: client.write_file(sandbox_id, block, code.encode("utf-8", "surrogatepass")))
        command = f"python3 {REPL_DIR}/client.py {REPL_DIR} {block} {timeout:g}"
        return await self._command(command, timeout + 15, on_output)

    async def run_shell(
        self, code: str, *, program: str = "sh", timeout: float, on_output: OutputCallback | None = None
    ) -> ShellResult:
        """Run ``code`` as a script of ``program`` in the working directory; a timeout is exit code
        :data:`TIMEOUT_EXIT_CODE` with the output so far. ``on_output``: as in :meth:`run_python`."""
        sandbox_id, client = self._sandbox_id, self._client
        script = f"{REPL_DIR}/block_{uuid.uuid4().hex}.sh"
        await self.call(lambda: client.write_file(sandbox_id, script, code.encode("utf-8", "surrogatepass")))
        command = f"{program} {script}; rc=$?; rm -f {script}; exit $rc"
        ran = await self._command(command, timeout, on_output)
        if ran.timed_out:
            return ShellResult(TIMEOUT_EXIT_CODE, ran.stdout, ran.stderr, True, ran.truncated)
        return ran

    async def interrupt(self) -> None:
        """Interrupt the Python block that is running (the interpreter keeps its variables)."""
        if self._interpreter_started:
            await self._client.exec_shell(self._sandbox_id, f"kill -INT $(cat {REPL_DIR}/repl.pid)")
